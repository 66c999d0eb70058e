"""Parse a policy YAML document into :class:`Policy`, with errors that name file and field."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from domain.policy import Policy


class PolicyError(ValueError):
    """The policy file is invalid. ``str()`` names the file and every bad field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_policy(text: str, source: str) -> Policy:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(source, [f"not valid YAML{where}: {exc}"]) from exc
    if not isinstance(data, dict):
        raise PolicyError(source, ["the top level must be a mapping"])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise PolicyError(source, problems) from exc
