"""The templates' markdown (``**bold**``) as each channel wants it."""

from __future__ import annotations

import html
import re

from domain.ids import parse_incident_id

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_URL = re.compile(r"(https?://[^\s)<>]+)")


def slack_mrkdwn(text: str) -> str:
    """Slack's mrkdwn: ``*bold*``; &, < and > escaped as Slack asks."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BOLD.sub(r"*\1*", escaped)


def plain(text: str) -> str:
    """SMS, voice and the text part of email: no markup."""
    return _BOLD.sub(r"\1", text)


def to_html(text: str) -> str:
    body = html.escape(text)
    body = _BOLD.sub(r"<strong>\1</strong>", body)
    body = _URL.sub(r'<a href="\1">\1</a>', body)
    paragraphs = [p.replace("\n", "<br>\n") for p in body.strip().split("\n\n")]
    inner = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!doctype html>\n<html><body style="font-family: sans-serif; font-size: 14px">\n'
        f"{inner}\n</body></html>\n"
    )


def sms_short_code(incident_id: str) -> str | None:
    """The code people text back (``ACK 1126001``): month, day and the day's number.

    Derived from the INC id rather than stored, so the API can turn a reply back into
    incident ids without sharing state with the worker: ``INC-2026-11-26-001`` → ``1126001``.
    Only the year is lost; replies are matched to this year's (or last year's) incident.
    """
    parsed = parse_incident_id(incident_id)
    if parsed is None:
        return None
    day, seq = parsed
    return f"{day.month:02d}{day.day:02d}{seq:03d}"


def incident_ids_for_code(code: str, years: list[int]) -> list[str]:
    """Candidate INC ids for a short code, newest year first."""
    code = code.strip()
    if not code.isdigit() or len(code) < 7:
        return []
    month, day, seq = int(code[:2]), int(code[2:4]), int(code[4:])
    out = []
    for year in years:
        candidate = f"INC-{year:04d}-{month:02d}-{day:02d}-{seq:03d}"
        if parse_incident_id(candidate) is not None:
            out.append(candidate)
    return out
