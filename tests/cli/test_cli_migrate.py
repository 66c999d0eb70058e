"""``firewatch migrate``: one-shot migrations of FIREWATCH_DATABASE_URL (PostgreSQL, given as
a plain libpq ``postgresql://`` URL) or of the data dir's SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from starter import cli
from storage.database import Database, sqlite_url
from storage.migrate import current_revision, head_revision
from storage.schema import metadata


def _migrate(tmp_path: Path, database_url: str | None, *args: str) -> Result:
    env = {
        "FIREWATCH_DATA_DIR": str(tmp_path / "data"),
        "FIREWATCH_DATABASE_URL": database_url,
        "FIREWATCH_API_TOKEN": "unused",
    }
    result = CliRunner().invoke(cli.app, ["migrate", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_once_then_already_at_head(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        url = make_url(request.getfixturevalue("postgres_url"))
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        assert plain.startswith("postgresql://")  # as libpq, psql and most tools write it
        opened = str(url.render_as_string(hide_password=False))
        given: str | None = plain
    else:
        given = None  # unset: the data dir's SQLite file
        opened = sqlite_url(tmp_path / "data")
    head = head_revision()

    first = _migrate(tmp_path, given)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0].startswith("database: ")
    assert "***" in lines[0] if backend == "postgresql" else "firewatch.db" in lines[0]
    assert lines[1] == f"migrated: (empty) -> {head} (head)"
    db = Database(opened)
    try:
        with db.read() as conn:
            assert current_revision(conn) == head
            assert set(metadata.tables) <= set(conn.dialect.get_table_names(conn))
    finally:
        db.close()

    again = _migrate(tmp_path, given, "--json")
    assert again.exit_code == 0, again.output
    answer = json.loads(again.stdout)
    assert answer["before"] == answer["after"] == answer["head"] == head
    assert answer["migrated"] is False
    assert _migrate(tmp_path, given).stdout.splitlines()[1] == f"already at head: {head}"


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _migrate(tmp_path, "postgresql://fw:secret@127.0.0.1:1/none?connect_timeout=2")
    assert result.exit_code == 1
    assert "cannot migrate postgresql+psycopg://fw:***@127.0.0.1:1/none" in result.stderr
    assert "secret" not in result.output


def test_an_unsupported_database_is_a_usage_error(tmp_path: Path) -> None:
    result = _migrate(tmp_path, "mysql://fw@127.0.0.1/fw")
    assert result.exit_code == 2
    assert "invalid FIREWATCH_DATABASE_URL" in result.stderr
