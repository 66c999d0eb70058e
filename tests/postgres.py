"""A throw-away PostgreSQL cluster for the tests: real server, temp dir, loopback port.

``PostgresServer`` runs Debian's (or any) PostgreSQL binaries: ``initdb`` into a temp dir,
``pg_ctl start`` on a free 127.0.0.1 port with its unix socket in that dir, one login role
with a password, and a fresh database per ``create_database()``. The server refuses to run
as root, so as root every server command runs as the ``postgres`` OS user (``runuser``),
on a dir it owns. Durability is off (fsync, synchronous_commit, full_page_writes): a test
cluster is thrown away, and this makes ``CREATE DATABASE`` and commits several times faster.

No binaries is an error, not a skip: ``make test-deps`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

ROLE = "firewatch"
SERVER_USER = "postgres"  # the OS user that runs the server when we are root
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",  # processes x pool sizes in the concurrency tests
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresMissing(RuntimeError):
    pass


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` (Debian), else wherever ``initdb`` is on PATH."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if found:
        return max(
            found, key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0
        )
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresMissing(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
        "or on PATH: the storage tests run on PostgreSQL too. Install them with "
        "`make test-deps` (as root) or `sudo apt-get install postgresql`."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster for the test session; ``create_database()`` hands out fresh databases."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.as_root = os.geteuid() == 0
        # As root the server user must reach the dir: /tmp, whatever TMPDIR says.
        parent = "/tmp" if self.as_root and os.path.isdir("/tmp") else None
        self.dir = Path(tempfile.mkdtemp(prefix="fw-postgres-", dir=parent))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = 0
        self.password = secrets.token_hex(12)
        self._count = 0
        self._template: str | None = None
        self._strategy = ""
        self._lock = threading.Lock()
        self.started_in_s = 0.0

    # ---- running server commands --------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}{log}"
            )
        return done

    def start(self) -> PostgresServer:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        began = time.monotonic()
        if self.as_root:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError as err:
                raise PostgresMissing(
                    f"running as root, but there is no {SERVER_USER!r} OS user to run the "
                    "server as (Debian's postgresql package creates it)"
                ) from err
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.dir.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",  # the admin connection: the socket in our private dir
            "--auth-host=scram-sha-256",  # Firewatch's: a role and password over TCP
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/postgres.py\n")
            conf.write(f"unix_socket_directories = '{self.dir}'\n")
            conf.write("listen_addresses = '127.0.0.1'\n")
            for name, value in SETTINGS.items():
                conf.write(f"{name} = {value}\n")
        for attempt in range(5):  # a free port can be taken before the server binds it
            self.port = free_port()
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                    "-o", f"-p {self.port}", "start",
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
            # PostgreSQL 15+ copies a small database 3-4x faster file by file than through
            # the WAL (its default); older servers only copy files.
            if conn.info.server_version >= 150000:
                self._strategy = " STRATEGY FILE_COPY"
        self.started_in_s = time.monotonic() - began
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- databases ----------------------------------------------------------------------

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the unix socket (autocommit)."""
        return psycopg.connect(
            host=str(self.dir), port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def url(self, dbname: str) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=ROLE,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=dbname,
        )

    def create_database(self, name: str | None = None, *, migrated: bool = False) -> str:
        """A new database owned by the Firewatch role: its URL (password included).

        Empty, or with ``migrated`` a copy of one migrated to head once per session (a
        template: a file copy, several times faster than running the migrations again).
        """
        with self._lock:
            self._count += 1
            name = name or f"fw_test_{self._count}"
            template = self._migrated_template() if migrated else "template0"
        with self.admin() as conn:
            conn.execute(
                f'CREATE DATABASE "{name}" OWNER {ROLE} TEMPLATE "{template}"{self._strategy}'
            )
        return self.url(name).render_as_string(hide_password=False)

    def _migrated_template(self) -> str:
        """The database every ``migrated`` one is copied from (under ``_lock``)."""
        name = "fw_template_head"
        if self._template is None:
            from storage.database import Database
            from storage.migrate import upgrade

            with self.admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}" OWNER {ROLE} TEMPLATE template0')
            db = Database(self.url(name))
            try:
                upgrade(db)
            finally:
                db.close()  # a template takes no connections while it is copied
            self._template = name
        return self._template

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
