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


def flaky_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int
) -> up.Supervisor:
    script = flaky_temporal(tmp_path, failures)
    monkeypatch.setattr(up, "temporal_binary", lambda: script)
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


async def attempt_start(sup: up.Supervisor) -> BaseException | None:
    """Start the embedded server as `make up` does and ask it one question, then stop
    everything; what the start raised, if anything."""
    try:
        client = await sup.start_embedded_temporal()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
    except (up.ChildDied, up.Interrupted) as err:
        return err
    finally:
        await sup.stop_all()
    return None


def starts(tmp_path: Path) -> int:
    return (tmp_path / "starts").read_text().count("x")


async def test_a_dev_server_that_dies_at_start_is_started_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await attempt_start(flaky_supervisor(tmp_path, monkeypatch, failures=1)) is None
    out = capsys.readouterr().out
    assert "[temporal] panic: runtime error: simulated start failure" in out
    assert "temporal had exited (exit code 2)" in out
    assert "Temporal exited before it answered; starting it once more" in out
    assert starts(tmp_path) == 2


async def test_a_dev_server_that_dies_twice_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = await attempt_start(flaky_supervisor(tmp_path, monkeypatch, failures=2))
    assert isinstance(err, up.ChildDied)
    assert str(err) == "temporal exited unexpectedly (exit code 2)"
    assert capsys.readouterr().out.count("starting it once more") == 1
    assert starts(tmp_path) == 2


async def test_no_second_start_once_a_stop_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = flaky_supervisor(tmp_path, monkeypatch, failures=1)
    reap = sup.stop_child

    async def reap_then_ctrl_c(child: up.Child) -> None:
        await reap(child)
        sup.stop_requested.set()  # Ctrl-C while the dead server was being cleaned up

    monkeypatch.setattr(sup, "stop_child", reap_then_ctrl_c)
    assert isinstance(await attempt_start(sup), up.Interrupted)
    assert "starting it once more" not in capsys.readouterr().out
    assert starts(tmp_path) == 1
