"""What arrives between steps: joining alerts, monitoring tools' own events and the end of a
maintenance window. Pure: the incident workflow collects them as signals and applies them
here, in arrival order, at its next step.
"""

from __future__ import annotations

from datetime import datetime

from domain import transitions
from domain.incident import (
    Alert,
    AlertAcknowledgeRequest,
    AlertResolveRequest,
    IncidentState,
    ReleasePaging,
)
from domain.policy import Policy
from domain.transitions import Effects

KEPT_ALERTS = 20  # the newest alerts kept in the state (the count keeps counting)


def keep_alert(state: IncidentState, alert: Alert) -> None:
    """A joining alert: counted and kept; it changes no timer."""
    state.alert_count += 1
    state.alerts = [*state.alerts, alert][-KEPT_ALERTS:]
    if state.detected_at is None and alert.detected_at is not None:
        state.detected_at = alert.detected_at


def absorb(
    state: IncidentState,
    policy: Policy,
    now: datetime,
    alerts: list[Alert],
    releases: list[ReleasePaging],
    source_actions: list[AlertResolveRequest | AlertAcknowledgeRequest],
) -> Effects:
    """Apply what arrived (and empty the lists): alerts while the incident is open, the
    release of its maintenance hold, then the tools' acknowledgements and resolutions."""
    effects = Effects()
    while alerts and state.is_open:
        keep_alert(state, alerts.pop(0))
    while releases:
        req = releases.pop(0)
        if state.paging_hold is not None and state.paging_hold.window == req.window:
            effects += transitions.release_paging(state, policy, now, req.by, req.early)
    while source_actions:
        action = source_actions.pop(0)
        who = action.integration or action.source
        act = (
            transitions.acknowledge_from_source
            if isinstance(action, AlertAcknowledgeRequest)
            else transitions.resolve_from_source
        )
        effects += act(state, policy, who, now)
    return effects
