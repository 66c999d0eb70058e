"""The fuzz test's judge of what a query string carried: table tests."""

from __future__ import annotations

import pytest

from tests.api.wire_query import query_is_valid

COMPONENTS = {"Role": {"type": "string", "enum": ["primary", "secondary"]}}
OPTIONAL_ID = {
    "in": "query",
    "name": "incident_id",
    "schema": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 8}, {"type": "null"}]},
}
LIMIT = {
    "in": "query",
    "name": "limit",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}
ROLE = {
    "in": "query",
    "name": "role",
    "schema": {"anyOf": [{"$ref": "#/c/Role"}, {"type": "null"}]},
}
OPEN = {"in": "query", "name": "open", "schema": {"type": "boolean"}}
SINCE = {"in": "query", "name": "since", "schema": {"type": "string", "format": "date-time"}}
BY = {"in": "query", "name": "by", "required": True, "schema": {"type": "string", "minLength": 1}}


@pytest.mark.parametrize(
    ("query", "valid"),
    [
        ("", True),  # a type mutated to {} goes out as nothing
        ("incident_id=false", True),  # ["false"] goes out as false
        ("incident_id=a&incident_id=b", True),  # the last value is read
        ("incident_id=", False),
        ("incident_id=123456789", False),
        ("limit=1000", True),
        ("limit=0", False),
        ("limit=1001", False),
        ("limit=1.5", False),
        ("limit=ten", False),
        ("role=primary", True),
        ("role=boss", False),
        ("open=true", True),
        ("open=0", True),
        ("open=maybe", False),
        ("since=2026-11-29T10:00:00Z", True),
        ("since=yesterday", False),
        ("other=anything", True),  # not a declared parameter: not judged here
    ],
)
def test_a_query_string_is_judged_as_sent(query: str, valid: bool) -> None:
    parameters = [OPTIONAL_ID, LIMIT, ROLE, OPEN, SINCE]
    assert query_is_valid(f"http://x/outbox?{query}", parameters, COMPONENTS) is valid


def test_a_required_parameter_must_be_sent() -> None:
    assert not query_is_valid("http://x/overrides/1", [BY], {})
    assert query_is_valid("http://x/overrides/1?by=ann", [BY], {})
