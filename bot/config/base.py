"""What every section shares: a frozen model that refuses unknown keys, and small value types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strip_slash(value: str) -> str:
    return value.strip().rstrip("/")


def _folded(fold: Callable[[str], str]) -> BeforeValidator:
    """Case-insensitive choices: fold a string before it is checked."""
    return BeforeValidator(lambda value: fold(value) if isinstance(value, str) else value)


BaseURL = Annotated[str, AfterValidator(_strip_slash)]
"""A base URL without its trailing slash (the clients append paths)."""
