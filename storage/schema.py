"""Every table Firewatch keeps, defined once.

Migrations (``storage/migrations/versions``) create and change them; the code reads and
writes them through SQLAlchemy Core. Portable types only (TEXT, INTEGER): the same tables
run on SQLite (the embedded default) and on PostgreSQL (``FIREWATCH_DATABASE_URL``).

Conventions for the tables to come (runbooks and changes, schedules and overrides, action
items, incident records): the incident is referred to by its INC id (``incident_id`` TEXT,
as below), times are UTC ISO-8601 text with microseconds (they sort as text), and
indexes and constraints take their names from ``NAMING_CONVENTION`` so that a later
migration can drop them by name on both databases. (Unique constraints are the exception:
the tables below carried unnamed ones before migrations existed, and a SQLite table cannot
rename them, so name a new one explicitly, ``UniqueConstraint(..., name="uq_<table>_<cols>")``.)
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# The durable outbox: every notification, once per idempotency key.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("incident_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("scheduled_at", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="sent"),
    Column("detail", Text),
    Index("outbox_incident", "incident_id"),
    sqlite_autoincrement=True,  # ids never reused: "newest first" stays true
)

# INC-YYYY-MM-DD-### allocation, and the INC id -> opening workflow run mapping.
incident_numbers = Table(
    "incident_numbers",
    metadata,
    Column("day", Text, nullable=False),  # UTC date, YYYY-MM-DD
    Column("sequence", Integer, nullable=False, autoincrement=False),
    # "<workflow id>#<run id>" of the opening run: one number per run, whatever retries.
    Column("workflow_key", Text, nullable=False, unique=True),
    Column("opened_at", Text),  # listing fields, written with the number
    Column("summary", Text),
    Column("service", Text),
    Column("severity", Text),  # at opening
    PrimaryKeyConstraint("day", "sequence"),
    Index("incident_numbers_opened", "opened_at"),
)

# The delivery ledger: one row per channel delivery key (see storage.ledger).
channel_deliveries = Table(
    "channel_deliveries",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("incident_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("provider_id", Text),
    Column("detail", Text),
    Column("tries", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    # The activity attempt holding a pending claim: "<run id>/<activity id>#<attempt>".
    Column("claimed_by", Text),
    Index("channel_deliveries_incident", "incident_id"),
)

# Small facts about incidents on the providers (Slack message ts, war room, cached ids).
channel_state = Table(
    "channel_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Text, nullable=False),
)

# The change feed: deployments and config changes by service (``domain.changes``).
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", Text, nullable=False),  # the caller's key, or one made up on receipt
    Column("service", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("who", Text),
    Column("at", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Column("integration", Text),
    Column("links", Text, nullable=False, server_default="[]"),  # JSON
    Column("details", Text, nullable=False, server_default="{}"),  # JSON
    UniqueConstraint("service", "change_id", name="uq_changes_service_change_id"),
    Index("ix_changes_service_at", "service", "at"),
    Index("ix_changes_at", "at"),
    sqlite_autoincrement=True,
)

# Mitigation actions run on the team's systems: one row per idempotency key, so a retried
# or restarted activity never runs an action twice (see activities/runbooks/mitigations.py).
mitigation_runs = Table(
    "mitigation_runs",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("incident_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending, succeeded, failed, unknown
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("result", Text),  # JSON of the MitigationResult
    Column("started_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Index("ix_mitigation_runs_incident_id", "incident_id"),
)

# Overrides and swaps made at run time (``firewatch override``, ``swap``): who covers a role
# when. Removal keeps the row (``removed_at``), so the audit trail can show it.
schedule_overrides = Table(
    "schedule_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("role", Text, nullable=False),
    Column("person", Text, nullable=False),
    Column("starts_at", Text, nullable=False),
    Column("ends_at", Text, nullable=False),
    Column("reason", Text),
    Column("swap_id", Text),  # the two halves of a swap share it
    Column("created_by", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("removed_at", Text),
    Column("removed_by", Text),
    Index("ix_schedule_overrides_role_ends_at", "role", "ends_at"),
    sqlite_autoincrement=True,
)

# Every change to the schedule, who made it and when (``firewatch override log``).
schedule_audit = Table(
    "schedule_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),  # added, removed, swapped
    Column("override_id", Integer),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON
    sqlite_autoincrement=True,
)

# Maintenance windows: alerts for the service are recorded but page nobody.
maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", Text, nullable=False),
    Column("starts_at", Text, nullable=False),
    Column("ends_at", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("ended_at", Text),  # ended early
    Column("ended_by", Text),
    Index("ix_maintenance_windows_service_ends_at", "service", "ends_at"),
    sqlite_autoincrement=True,
)

# Post-mortems and their action items (issue 13): one row each, rewritten by the
# post-mortem workflow at every change (``version`` orders the snapshots), so reports read
# them without replaying workflows. ``due_at``: when the item goes overdue (UTC).
postmortems = Table(
    "postmortems",
    metadata,
    Column("incident_id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("severity", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("resolved_at", Text),
    Column("review_at", Text, nullable=False),
    Column("held_at", Text),
    Column("held_by", Text),
    Column("lessons_filled", Integer, nullable=False, server_default="0"),
    Column("items_total", Integer, nullable=False, server_default="0"),
    Column("items_open", Integer, nullable=False, server_default="0"),
    Column("completed_at", Text),
    Column("completed_by", Text),
    Column("document_path", Text),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON: the notes
    Column("updated_at", Text, nullable=False),
    Index("ix_postmortems_stage", "stage"),
)
action_items = Table(
    "action_items",
    metadata,
    Column("incident_id", Text, nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("due", Text, nullable=False),  # YYYY-MM-DD, the team's time zone
    Column("due_at", Text, nullable=False),
    Column("status", Text, nullable=False),  # open, closed, verified
    Column("created_by", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("closed_by", Text),
    Column("closed_at", Text),
    Column("evidence", Text),
    Column("verified_by", Text),
    Column("verified_at", Text),
    Column("overdue_notices", Integer, nullable=False, server_default="0"),
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("incident_id", "number"),
    Index("ix_action_items_owner_status", "owner", "status"),
    Index("ix_action_items_status_due_at", "status", "due_at"),
)

# The weekly handoff (``domain.handoff``): one row per handoff (per rotation and shift),
# rewritten as it goes (``version`` orders the writes); the report and the test pages as
# JSON. Notes are the outgoing person's knowledge transfer (``firewatch handoff note``).
handoffs = Table(
    "handoffs",
    metadata,
    Column("handoff_id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("shift_start", Text, nullable=False),
    Column("outgoing", Text, nullable=False),
    Column("incoming", Text, nullable=False),
    Column("status", Text, nullable=False),  # testing, finished
    Column("version", Integer, nullable=False),
    Column("unverified", Integer, nullable=False, server_default="0"),
    Column("result", Text, nullable=False),  # JSON: domain.handoff.HandoffResult
    Column("started_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Index("ix_handoffs_started_at", "started_at"),
)
handoff_notes = Table(
    "handoff_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("author", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Index("ix_handoff_notes_author_created_at", "author", "created_at"),
    sqlite_autoincrement=True,
)
# When each integration last sent anything (touched by ingest, throttled): the handoff's
# "Monitoring health".
integration_seen = Table(
    "integration_seen",
    metadata,
    Column("name", Text, primary_key=True),
    Column("last_seen_at", Text, nullable=False),
)

# Ticket edits made after the incident's workflow closed: laid over its final state when
# it is shown and when its ticket is written again (``storage.ticket_edits``).
ticket_edits = Table(
    "ticket_edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("edit", Text, nullable=False),  # JSON of the TicketEdit
    Index("ix_ticket_edits_incident_id", "incident_id"),
    sqlite_autoincrement=True,
)

# One row per incident for the reports (``domain.records``): the record as JSON, and the
# columns a period is selected by. Written with every ticket version; an older write never
# replaces a newer one.
incident_records = Table(
    "incident_records",
    metadata,
    Column("incident_id", Text, primary_key=True),
    Column("opened_at", Text, nullable=False),
    Column("resolved_at", Text),
    Column("severity", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("record", Text, nullable=False),  # JSON of the IncidentRecord
    Index("ix_incident_records_opened_at", "opened_at"),
    Index("ix_incident_records_resolved_at", "resolved_at"),
)

# Markdown documents (issue 15): each incident's ticket and post-mortem draft, the source of
# truth (files in the data dir are a mirror or an export). ``version`` orders the writes: an
# older one never replaces a newer one. ``markdown`` is the whole document as the file holds
# it, version marker included.
documents = Table(
    "documents",
    metadata,
    Column("kind", Text, nullable=False),  # ticket, postmortem
    Column("incident_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("kind", "incident_id"),
)

# The installation's secrets (``starter.secrets``), one row each: ``api_token``,
# ``calendar_secret``, ``integration:<name>`` (JSON: kind, key, hmac_secret) and
# ``heartbeat:<name>``. Generated once by whichever process comes first (insert-ignore).
secrets = Table(
    "secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# Integrations added at run time (``firewatch integrations add``), each with its key.
added_integrations = Table(
    "added_integrations",
    metadata,
    Column("name", Text, primary_key=True),
    Column("integration", Text, nullable=False),  # JSON of domain.policy.Integration
    Column("secret", Text, nullable=False),  # JSON of the IntegrationSecret
    Column("added_at", Text, nullable=False),
)

# Counters bumped by every change to a cached table, so a cache can tell cheaply that it is
# stale (``added_integrations``: every API process re-reads the integrations on a change).
state_versions = Table(
    "state_versions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", Integer, nullable=False),
)
