"""``firewatch ticket INC-… --by NAME --user-impact "…" …``: the Incident Report's fields.

The ticket file is output: Firewatch writes it from the incident record at every step. This
command changes the record (the fields given; the others stay), and the timeline says who
set which. While the incident's workflow runs (open, and for a while after resolution).
"""

from __future__ import annotations

from typing import Annotated

import typer

from starter.cli import (
    ApiOpt,
    ByOpt,
    CliError,
    IncidentArg,
    JsonOpt,
    _client,
    _done,
    _incident_id,
    _text,
    app,
)

DETECTION = ("monitoring", "user-report", "internal")
_DETECTION_VALUES = {
    "monitoring": "Monitoring",
    "user-report": "User Report",
    "internal": "Internal",
}
Text = Annotated[str | None, typer.Option(metavar="TEXT")]


@app.command()
def ticket(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    affected_services: Text = None,
    user_impact: Text = None,
    business_impact: Text = None,
    data_loss: Annotated[str | None, typer.Option(metavar="yes|no", help="Was data lost?")] = None,
    customer_impact_hours: Annotated[float | None, typer.Option(min=0, metavar="HOURS")] = None,
    contributing_factors: Text = None,
    detection: Annotated[
        str | None, typer.Option(metavar="HOW", help="monitoring, user-report or internal.")
    ] = None,
    immediate_actions: Text = None,
    workaround: Text = None,
    permanent_fix: Text = None,
    prevention_short_term: Text = None,
    prevention_long_term: Text = None,
    monitoring_improvements: Text = None,
    process_changes: Text = None,
    what_went_well: Text = None,
    areas_for_improvement: Text = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the Incident Report's fields: impact, cause, actions, prevention, lessons."""
    texts = {
        "affected_services": affected_services,
        "user_impact": user_impact,
        "business_impact": business_impact,
        "contributing_factors": contributing_factors,
        "immediate_actions": immediate_actions,
        "workaround": workaround,
        "permanent_fix": permanent_fix,
        "prevention_short_term": prevention_short_term,
        "prevention_long_term": prevention_long_term,
        "monitoring_improvements": monitoring_improvements,
        "process_changes": process_changes,
        "what_went_well": what_went_well,
        "areas_for_improvement": areas_for_improvement,
    }
    fields: dict[str, object] = {
        name: _text(value, "--" + name.replace("_", "-"))
        for name, value in texts.items()
        if value is not None
    }
    if data_loss is not None:
        if data_loss.lower() not in ("yes", "no"):
            raise CliError(f"--data-loss must be yes or no, not {data_loss!r}")
        fields["data_loss"] = data_loss.lower() == "yes"
    if customer_impact_hours is not None:
        fields["customer_impact_hours"] = customer_impact_hours
    if detection is not None:
        if detection.lower() not in DETECTION:
            raise CliError(f"--detection must be one of {', '.join(DETECTION)}, not {detection!r}")
        fields["detection_method"] = _DETECTION_VALUES[detection.lower()]
    if not fields:
        raise CliError("give at least one field to set (see firewatch ticket --help)")
    incident_id = _incident_id(incident)
    with _client(ctx, api) as client:
        state = client.edit_ticket(incident_id, _text(by, "--by"), fields)
    _done(state, as_json, "Updated the ticket of")
