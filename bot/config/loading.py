"""The whole configuration: reading the TOML file and the environment, and wording every
failure as one :class:`ConfigError` line."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config.platforms import CometAPISettings, DiscordSettings, TelegramSettings
from bot.config.sections import (
    AccessSettings,
    ChatSettings,
    GenerationSettings,
    HttpSettings,
    ImagesSettings,
    LimitsSettings,
    LoggingSettings,
    StorageSettings,
    VoiceSettings,
)

ENV_PREFIX = "BOT_"
ENV_DELIMITER = "__"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the operator."""


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
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    images: ImagesSettings = Field(default_factory=ImagesSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)

    _SECTIONS: ClassVar[tuple[str, ...]] = (
        "cometapi",
        "telegram",
        "discord",
        "storage",
        "chat",
        "logging",
        "access",
        "limits",
        "http",
        "generation",
        "images",
        "voice",
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
    if kind == "value_error":  # a validator's own sentence, as written (it may say "A-Z")
        return f"{source}: {where}: {str(error['msg']).removeprefix('Value error, ')}"
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
