"""Maintenance tests: the workflows' ``queue`` fixture (a real worker, time-skipping server)."""

from __future__ import annotations

from tests.workflows.conftest import queue

__all__ = ["queue"]
