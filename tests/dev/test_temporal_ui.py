"""The Temporal UI reads as an incident: Debian's Chromium on the real UI that ``make up`` runs.

``python -m starter.up`` starts the dev server with its UI (2.54), the worker and the API on
free ports and a temporary data dir; ``firewatch trigger`` opens a P1 without a dedup key
(outbox only); then Playwright (from PyPI) drives ``/usr/bin/chromium`` (Debian's package,
installed by ``make test-deps``; never ``playwright install``) over the pages a responder
opens, and checks what they show without a click. Screenshots of each page are kept in the
test's temporary directory; their paths are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from temporalio.client import Client

from tests.browser import chromium
from tests.dev.support import free_port, log_tail

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VIEWPORT: ViewportSize = {"width": 1600, "height": 1000}  # a laptop's full-HD-ish window
UP_TIMEOUT_S = 120.0
SEEN_WITHIN_MS = 30_000  # Playwright waits this long for text to appear (auto-refreshing UI)
NAMESPACE = "default"
SERVICE, SEVERITY, SUMMARY = "api", "P1", "API p99 > 5s"
# The README's "Incidents in the Temporal UI" steps, as the column picker names them.
INCIDENT_COLUMNS = ("IncidentId", "IncidentSeverity", "IncidentStatus", "IncidentAssignee")
COLUMNS_TO_DROP = ("Run ID", "Type", "Start", "End")  # the readable id has the time

expect.set_options(timeout=SEEN_WITHIN_MS)


@dataclass
class Up:
    """One ``python -m starter.up`` (``make up``) on free ports."""

    data: Path
    log: Path
    temporal_port: int
    ui_port: int
    api_port: int
    proc: subprocess.Popen[bytes]

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def output(self) -> str:
        return log_tail(self.log, 60)


@dataclass
class Incident:
    workflow_id: str
    run_id: str
    incident_id: str
    assignee: str


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("temporal-ui")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    base = tmp_path_factory.mktemp("up")
    (base / "xdg").mkdir()
    data, log_path = base / "data", base / "up.log"
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.pop("FIREWATCH_TEMPORAL_UI_URL", None)
    env.update(
        FIREWATCH_DATA_DIR=str(data),
        FIREWATCH_TEMPORAL_PORT=str(temporal_port),
        FIREWATCH_UI_PORT=str(ui_port),
        FIREWATCH_API_HOST="127.0.0.1",
        FIREWATCH_API_PORT=str(api_port),
        XDG_CONFIG_HOME=str(base / "xdg"),  # no temporal.toml profile: the embedded server
        PYTHONUNBUFFERED="1",
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "starter.up"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped below whatever happens
        )
    run = Up(data, log_path, temporal_port, ui_port, api_port, proc)
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        # The banner comes after the UI's API answered (starter.up.wait_for_ui) and a worker
        # polls: the UI's /api/v1 can refuse for a moment after Temporal's gRPC is up.
        while "Firewatch is up" not in run.log.read_text(errors="replace"):
            if run.proc.poll() is not None:
                pytest.fail(f"make up exited with {run.proc.returncode}:\n{run.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"make up not ready in {UP_TIMEOUT_S:.0f} s:\n{run.output()}")
            time.sleep(0.2)
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)  # Ctrl-C: API, worker, then Temporal stop
            try:
                run.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.wait(timeout=10)


@pytest.fixture(scope="module")
async def incident(up: Up) -> Incident:
    """A P1 opened as a person would: ``firewatch trigger`` without a dedup key."""
    env = {
        **os.environ,
        "FIREWATCH_API_URL": f"http://127.0.0.1:{up.api_port}",
        "FIREWATCH_DATA_DIR": str(up.data),
    }
    argv = [str(BIN / "firewatch"), "trigger", "--service", SERVICE, "--severity", SEVERITY]
    argv += ["--summary", SUMMARY, "--json"]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60
    )
    state: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    if done.returncode != 0 or not state.get("incident_id"):
        pytest.fail(
            f"firewatch trigger: exit {done.returncode}\n{done.stdout}{done.stderr}\n"
            f"--- make up ---\n{up.output()}"
        )
    client = await Client.connect(f"127.0.0.1:{up.temporal_port}", namespace=NAMESPACE)
    described = await client.get_workflow_handle(state["workflow_id"]).describe()
    return Incident(
        workflow_id=state["workflow_id"],
        run_id=described.run_id,
        incident_id=state["incident_id"],
        assignee=state["assignee"],
    )


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)  # fresh local storage: UI defaults
    context.set_default_timeout(SEEN_WITHIN_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def screenshot(page: Page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def workflow_url(up: Up, inc: Incident, tab: str | None = None) -> str:
    url = f"{up.ui}/namespaces/{NAMESPACE}/workflows/{quote(inc.workflow_id, safe='')}"
    return f"{url}/{inc.run_id}/{tab}" if tab else url


async def test_workflow_id_names_the_incident(incident: Incident) -> None:
    stamp = r"\d{4}-\d{2}-\d{2}T\d{4}Z"
    pattern = rf"incident/direct/api-{stamp}-api-p99-5s-[0-9a-f]{{8}}"
    assert re.fullmatch(pattern, incident.workflow_id), incident.workflow_id


async def test_workflow_page_reads_as_the_incident(
    up: Up, incident: Incident, page: Page, shots: Path
) -> None:
    # What a link to the workflow opens: 2.54 redirects to the latest run's Timeline tab.
    await page.goto(workflow_url(up, incident))
    await expect(page).to_have_url(re.compile(rf"/{incident.run_id}/timeline$"))
    await expect(page.get_by_test_id("workflow-id-heading")).to_contain_text(incident.workflow_id)
    # Timers show their summary on the Timeline; local activities only their type name.
    await expect(page.get_by_text("Next: page Secondary On-Call").first).to_be_visible()
    await screenshot(page, shots, "1-timeline")

    # The Event History tab shows every summary: the incident's, and each step's (a local
    # activity's too). Its table is wider than the window: a responder scrolls, no click.
    await page.goto(workflow_url(up, incident, "history"))
    for text in (f"{SEVERITY} · {SERVICE} · {SUMMARY}", f"page → {incident.assignee}"):
        seen = page.get_by_text(text).first
        await seen.scroll_into_view_if_needed()
        await expect(seen).to_be_in_viewport()
    await screenshot(page, shots, "2-history")

    # One click away (the User Metadata tab): the summary, and the current details.
    await page.goto(workflow_url(up, incident, "user-metadata"))
    rendered = page.frame_locator('iframe[title="output"]')  # markdown, each in its frame
    await expect(rendered.first.get_by_text(f"{SEVERITY} · {SERVICE} · {SUMMARY}")).to_be_visible()
    await expect(rendered.last.get_by_text(incident.incident_id)).to_be_visible()
    await screenshot(page, shots, "3-user-metadata")


async def test_workflow_page_shows_the_inc_id_without_a_click(
    up: Up, incident: Incident, page: Page, shots: Path
) -> None:
    await page.goto(workflow_url(up, incident))
    await expect(page.get_by_text("Next: page Secondary On-Call").first).to_be_visible()
    try:
        await expect(page.get_by_text(incident.incident_id).first).to_be_visible(timeout=5_000)
    finally:
        await screenshot(page, shots, "4-timeline-inc-id")


async def test_readme_columns_and_search_find_the_incident(
    up: Up, incident: Incident, page: Page, shots: Path
) -> None:
    await page.goto(f"{up.ui}/namespaces/{NAMESPACE}/workflows")
    await expect(page.get_by_text(incident.workflow_id)).to_be_visible()
    # README: Configure Columns, + the four Incident* attributes, - Run ID, Type, Start, End.
    await page.get_by_role("button", name="Configure Columns").click()
    for column in INCIDENT_COLUMNS:
        await page.get_by_role("button", name=f"Add {column} column").click()
    for column in COLUMNS_TO_DROP:
        await page.get_by_role("button", name=f"Remove {column} column").click()
    await page.get_by_role("button", name="Close Workflows Table configuration").click()
    for column in INCIDENT_COLUMNS:
        await expect(page.get_by_role("columnheader", name=column)).to_be_visible()
    for value in (incident.incident_id, SEVERITY, "Triggered", incident.assignee):
        await expect(page.get_by_text(value, exact=True)).to_be_in_viewport()
    await screenshot(page, shots, "5-list-columns")

    # README: the </> button opens the raw query; the filter keeps the columns.
    await page.get_by_test_id("toggle-manual-query").click()
    query = page.get_by_placeholder("Enter a query")
    await query.fill(f'IncidentId = "{incident.incident_id}"')
    await query.press("Enter")
    await expect(page).to_have_url(re.compile(r"[?&]query=.*IncidentId"))
    await expect(page.get_by_text(incident.workflow_id)).to_be_visible()
    await expect(page.get_by_text(incident.incident_id, exact=True)).to_be_visible()
    await screenshot(page, shots, "6-list-search")

    # A query nothing matches empties the list: the filter really filters.
    none = quote('IncidentStatus = "Resolved" AND IncidentSeverity = "P0"')
    await page.goto(f"{up.ui}/namespaces/{NAMESPACE}/workflows?query={none}")
    await expect(page.get_by_text("No Workflows").first).to_be_visible()
    await expect(page.get_by_text(incident.workflow_id)).to_have_count(0)
