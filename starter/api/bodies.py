"""The base of the JSON request bodies people and tools send (changes, maintenance,
handoffs, post-mortems).

Lengths are checked on the text as sent, as the OpenAPI schema says; then surrounding
whitespace is trimmed, and a required text that was only whitespace is refused. (Pydantic's
``str_strip_whitespace`` checks the lengths after trimming: a summary one character over
``maxLength`` with a leading space was accepted, against the published schema.)
"""

from __future__ import annotations

from typing import Any

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _trimmed(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        trimmed = value.strip()
        field = cls.model_fields.get(info.field_name or "")
        required = field is not None and any(
            isinstance(m, MinLen) and m.min_length > 0 for m in field.metadata
        )
        if required and not trimmed:
            raise ValueError("must not be blank")
        return trimmed
