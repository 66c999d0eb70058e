"""Whether a query string, as it went over the wire, satisfies an operation's parameters.

Schemathesis makes a query parameter "negative" by changing its type, but a query string
carries only text: `["false"]` goes out as `false`, `{}` as nothing at all. Such a
request is valid on the wire, and an API that accepts it is right to. The fuzz test asks
this module before it holds a 2xx against a negative case.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs

# The text forms pydantic reads as booleans in lax mode (FastAPI's query parsing).
_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on", "t", "y"), True),
    **dict.fromkeys(("false", "0", "no", "off", "f", "n"), False),
}
_INTEGER = re.compile(r"[+-]?\d+")


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = components[ref.rsplit("/", 1)[-1]]
    return resolved


def _from_text(schema: dict[str, Any], text: str) -> tuple[bool, Any]:
    """The typed value `text` stands for under `schema`, if it can stand for one."""
    kind = schema.get("type")
    if kind == "integer":
        return (True, int(text)) if _INTEGER.fullmatch(text) else (False, None)
    if kind == "boolean":
        value = _BOOLEANS.get(text.lower())
        return value is not None, value
    return kind in (None, "string"), text


def value_is_valid(schema: dict[str, Any], text: str, components: dict[str, Any]) -> bool:
    for branch in (_resolve(b, components) for b in schema.get("anyOf", [schema])):
        readable, value = _from_text(branch, text)
        if readable and jsonschema_rs.validator_for(branch, validate_formats=True).is_valid(value):
            return True
    return False


def query_is_valid(url: str, parameters: list[dict[str, Any]], components: dict[str, Any]) -> bool:
    """Every declared query parameter present on `url` is valid (the last of repeated
    values is the one read), and every required one is present."""
    sent = parse_qs(urlsplit(url).query, keep_blank_values=True)
    for parameter in parameters:
        if parameter["in"] != "query":
            continue
        values = sent.get(parameter["name"])
        if not values:
            if parameter.get("required"):
                return False
            continue
        if not value_is_valid(parameter["schema"], values[-1], components):
            return False
    return True
