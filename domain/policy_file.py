"""Parse policy and runbook YAML documents, with errors that name the file and the field."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from domain.policy import Policy
from domain.runbooks import Runbook


class PolicyError(ValueError):
    """The policy file is invalid. ``str()`` names the file and every bad field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _mapping(text: str, source: str) -> dict[str, Any]:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(source, [f"not valid YAML{where}: {exc}"]) from exc
    if not isinstance(data, dict):
        raise PolicyError(source, ["the top level must be a mapping"])
    return data


def _problems(exc: ValidationError) -> list[str]:
    return [f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors()]


def parse_policy(text: str, source: str) -> Policy:
    data = _mapping(text, source)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, _problems(exc)) from exc


def parse_runbook(text: str, source: str) -> Runbook:
    """One service's runbook file (``runbooks/api.yaml``)."""
    data = _mapping(text, source)
    try:
        return Runbook.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, _problems(exc)) from exc


def with_runbooks(policy: Policy, runbooks: dict[str, Runbook], source: str) -> Policy:
    """The policy with the runbook files' runbooks (service -> runbook) added to its own."""
    twice = sorted(set(policy.runbooks) & set(runbooks))
    if twice:
        problems = [
            f"runbooks.{name}: defined in the policy file and as a runbook file" for name in twice
        ]
        raise PolicyError(source, problems)
    return policy.model_copy(update={"runbooks": {**policy.runbooks, **runbooks}})
