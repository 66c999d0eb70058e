"""Typed search attribute keys for Firewatch incidents.

Workflows upsert these; the starter registers them on the namespace
(see ``starter.temporal_setup``). Only ``temporalio.common`` is imported so
the module is safe inside the workflow sandbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey

INCIDENT_ID: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentId")
INCIDENT_SEVERITY: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentSeverity")
INCIDENT_STATUS: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentStatus")
INCIDENT_SERVICE: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentService")
INCIDENT_ASSIGNEE: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentAssignee")
INCIDENT_DEDUP_KEY: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentDedupKey")
INCIDENT_SOURCE: SearchAttributeKey[str] = SearchAttributeKey.for_keyword("IncidentSource")
INCIDENT_OPENED_AT: SearchAttributeKey[datetime] = SearchAttributeKey.for_datetime(
    "IncidentOpenedAt"
)
INCIDENT_RESOLVED_AT: SearchAttributeKey[datetime] = SearchAttributeKey.for_datetime(
    "IncidentResolvedAt"
)
INCIDENT_FALSE_POSITIVE: SearchAttributeKey[bool] = SearchAttributeKey.for_bool(
    "IncidentFalsePositive"
)

# Every custom attribute Firewatch needs on the namespace, in registration order.
ALL_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    INCIDENT_ID,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    INCIDENT_SERVICE,
    INCIDENT_ASSIGNEE,
    INCIDENT_DEDUP_KEY,
    INCIDENT_SOURCE,
    INCIDENT_OPENED_AT,
    INCIDENT_RESOLVED_AT,
    INCIDENT_FALSE_POSITIVE,
)
