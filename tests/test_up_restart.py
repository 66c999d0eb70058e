"""``make up``'s embedded dev server gets a second start when it dies before answering
(starter.up.Supervisor.start_embedded_temporal), with a ``temporal`` that fails first."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from starter import up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flaky_temporal(tmp_path: Path, failures: int) -> Path:
    """A ``temporal`` that panics on its first ``failures`` starts, then is the real one."""
    counter = tmp_path / "starts"
    script = tmp_path / "temporal"
    script.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{counter}"\n'
        f'if [ "$(wc -l < "{counter}")" -le {failures} ]; then\n'
        '  echo "panic: runtime error: simulated start failure"; exit 2\n'
        "fi\n"
        f'exec "{up.temporal_binary()}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def supervisor(tmp_path: Path) -> up.Supervisor:
    return up.Supervisor(
        up.Settings(
            data_dir=tmp_path / "data",
            temporal_port=free_port(),
            ui_port=free_port(),
            api_host="127.0.0.1",
            api_port=free_port(),
            namespace="default",
            embedded=True,
        )
    )


async def test_a_dev_server_that_dies_at_start_is_started_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = flaky_temporal(tmp_path, failures=1)
    monkeypatch.setattr(up, "temporal_binary", lambda: script)
    sup = supervisor(tmp_path)
    try:
        client = await sup.start_embedded_temporal()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
    finally:
        await sup.stop_all()
    out = capsys.readouterr().out
    assert "[temporal] panic: runtime error: simulated start failure" in out
    assert "temporal had exited (exit code 2)" in out
    assert "Temporal exited before it answered; starting it once more" in out
    assert (tmp_path / "starts").read_text().count("x") == 2


async def test_a_dev_server_that_dies_twice_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = flaky_temporal(tmp_path, failures=2)
    monkeypatch.setattr(up, "temporal_binary", lambda: script)
    sup = supervisor(tmp_path)
    try:
        with pytest.raises(up.ChildDied, match=r"temporal exited unexpectedly \(exit code 2\)"):
            await sup.start_embedded_temporal()
    finally:
        await sup.stop_all()
    assert capsys.readouterr().out.count("starting it once more") == 1
    assert (tmp_path / "starts").read_text().count("x") == 2
