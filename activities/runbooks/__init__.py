"""Runbooks that run: checks and mitigation actions as activities (issue 11).

``RunbookActivities(store, settings)``: ``run_check`` ("Run check") and ``run_mitigation``
("Run mitigation"); ``.activities`` lists both for the worker.
"""

from activities.runbooks.checks import RunbookActivities
from activities.runbooks.mitigations import MitigationActivities
from activities.runbooks.models import MitigationResult, RunCheck, RunMitigation

__all__ = [
    "MitigationActivities",
    "MitigationResult",
    "RunCheck",
    "RunMitigation",
    "RunbookActivities",
]
