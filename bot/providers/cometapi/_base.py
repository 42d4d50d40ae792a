"""Shared building blocks for the typed task models (private)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator


class LenientModel(BaseModel):
    """A frozen pydantic model that survives the gateways' quirks.

    Unknown fields are ignored, numbers are accepted where strings are expected
    (task ids come both ways) and explicit ``null`` falls back to the field's
    default, so ``"buttons": null`` reads as ``[]``.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        coerce_numbers_to_str=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


S = TypeVar("S", bound=StrEnum)


def parse_status(
    value: Any, statuses: type[S], *, empty: S, unknown: S, aliases: Mapping[str, S] | None = None
) -> S:
    """An upstream status string -> ``statuses`` (case and blanks ignored): an empty one is
    ``empty``, an alias maps through ``aliases``, anything unrecognised is ``unknown``."""
    text = str(value or "").strip().upper()
    if not text:
        return empty
    if aliases and text in aliases:
        return aliases[text]
    try:
        return statuses(text)
    except ValueError:
        return unknown


def parse_percent(value: Any) -> int:
    """``"45%"``, ``"45"``, ``45``, ``""`` or garbage -> an int in 0..100 (garbage -> 0)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value or "").strip().rstrip("%").strip()
        try:
            number = float(text) if text else 0.0
        except ValueError:
            return 0
    return max(0, min(100, int(number)))


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty dict (for optional nested objects)."""
    return value if isinstance(value, dict) else {}


def as_float(value: Any) -> float | None:
    """A float from a number or numeric string (Kling sends ``"5.1"``); else None."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
