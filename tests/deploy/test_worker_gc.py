"""The worker's garbage-collector tuning (worker.tune_garbage_collector), in a fresh
interpreter so this test process keeps Python's defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import worker

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_freezes_startup_objects_and_collects_less_often() -> None:
    probe = (
        "import gc, json, worker\n"
        "before = gc.get_threshold()\n"
        "worker.tune_garbage_collector()\n"
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after, frozen = json.loads(out.stdout)
    assert tuple(before) != worker.GC_THRESHOLDS  # Python's defaults, whatever the version
    assert tuple(after) == worker.GC_THRESHOLDS
    assert frozen > 10_000  # the imported SDK, pydantic models and templates


def test_the_worker_process_tunes_it_at_start() -> None:
    assert "tune_garbage_collector" in worker.main.__code__.co_names
