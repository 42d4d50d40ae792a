"""Configuration: a TOML file plus ``BOT_<SECTION>__<KEY>`` environment overrides.

The section and key names are part of the product (operators write them; see
``config.example.toml``). Secrets are :class:`pydantic.SecretStr` so they never
show up in a repr, a log line or an error message.

Every way loading can fail becomes a :class:`ConfigError` whose message is one
line an operator can act on; ``python -m bot`` prints it and exits.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "BOT_"
ENV_DELIMITER = "__"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strip_slash(value: str) -> str:
    return value.strip().rstrip("/")


class CometAPISettings(_Section):
    api_key: SecretStr = SecretStr("")
    base_url: str = "https://api.cometapi.com"
    timeout: float = Field(default=60.0, gt=0, description="seconds to wait for an answer")
    max_retries: int = Field(default=3, ge=0, le=10)

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return _strip_slash(value)


class TelegramSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value().strip())


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = ""

    @field_validator("api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return _strip_slash(value)

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value().strip())


class StorageSettings(_Section):
    path: str = "data/bot.sqlite3"


class ChatSettings(_Section):
    default_model: str = "gpt-4o-mini"
    system_prompt: str = "You are a helpful assistant in a group chat. Be concise."
    context_tokens: int = Field(default=8000, ge=256)
    model_context_tokens: dict[str, int] = Field(default_factory=dict)
    max_prompt_chars: int = Field(default=8000, ge=1)
    models: list[str] = Field(default_factory=list)

    def context_budget(self, model: str) -> int:
        """The token budget for the context sent with ``model``."""
        return self.model_context_tokens.get(model, self.context_tokens)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    cometapi: CometAPISettings = Field(default_factory=CometAPISettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    _SECTIONS: ClassVar[tuple[str, ...]] = (
        "cometapi",
        "telegram",
        "discord",
        "storage",
        "chat",
        "logging",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (the file arrives as init kwargs).
        return (env_settings, init_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; copy config.example.toml to {path} and fill it in"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        # tomllib's message ends with "(at line N, column M)", which is what an operator needs.
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) == 1:
        return f"[{parts[0]}]"
    return f"[{parts[0]}] {'.'.join(parts[1:])}"


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + ENV_DELIMITER.join(str(p).upper() for p in loc[:2])


def _explain(error: Any, path: Path, env_keys: set[str]) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    source = _env_name(loc) if _env_name(loc) in env_keys else str(path)
    kind = error["type"]
    where = _where(loc)
    if kind == "extra_forbidden":
        if len(loc) == 1:
            return f"{source}: unknown section or key {where}"
        return f"{source}: unknown key {where}"
    # Never echo the offending value: it might be a secret typed into the wrong place.
    return f"{source}: {where}: {error['msg'].lower()}"


def load_settings(path: str | Path) -> Settings:
    """Read ``path`` and the environment; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    data = _read_toml(path)
    env_keys = {k.upper() for k in os.environ if k.upper().startswith(ENV_PREFIX)}
    for key, value in data.items():
        if key in Settings._SECTIONS and not isinstance(value, dict):
            raise ConfigError(f"{path}: [{key}] must be a table (a [{key}] section)")
    try:
        return Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_explain(first, path, env_keys)) from None


def check_can_run(settings: Settings, *, console: bool, path: str | Path) -> None:
    """Refuse to start without what the chosen mode needs, in one line."""
    if not settings.cometapi.api_key.get_secret_value().strip():
        raise ConfigError(
            f"{path}: set [cometapi] api_key (or the BOT_COMETAPI__API_KEY environment variable)"
        )
    if console:
        return
    if not (settings.telegram.enabled or settings.discord.enabled):
        raise ConfigError(
            f"{path}: no platform is on: set [telegram] token and/or [discord] token "
            "(or BOT_TELEGRAM__TOKEN / BOT_DISCORD__TOKEN); "
            "`python -m bot console` needs only the API key"
        )
