"""Configuration: a TOML file plus ``BOT_<SECTION>__<KEY>`` environment overrides.

The section and key names are part of the product (operators write them; see
``config.example.toml``). Secrets are :class:`pydantic.SecretStr` so they never
show up in a repr, a log line or an error message.

Every way loading can fail becomes a :class:`ConfigError` whose message is one
line an operator can act on; ``python -m bot`` prints it and exits.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.core.generation.records import DEFAULT_DEADLINES, Provider

ENV_PREFIX = "BOT_"
ENV_DELIMITER = "__"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strip_slash(value: str) -> str:
    return value.strip().rstrip("/")


def _folded(fold: Callable[[str], str]) -> BeforeValidator:
    """Case-insensitive choices: fold a string before it is checked."""
    return BeforeValidator(lambda value: fold(value) if isinstance(value, str) else value)


BaseURL = Annotated[str, AfterValidator(_strip_slash)]
"""A base URL without its trailing slash (the clients append paths)."""


class CometAPISettings(_Section):
    api_key: SecretStr = SecretStr("")
    base_url: BaseURL = "https://api.cometapi.com"
    timeout: float = Field(default=60.0, gt=0, description="seconds to wait for an answer")
    max_retries: int = Field(default=3, ge=0, le=10)


# What setWebhook accepts as secret_token (Telegram's words: 1-256 characters, A-Z a-z 0-9 _ -).
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# The only ports Telegram calls a webhook on.
_WEBHOOK_PORTS = (443, 80, 88, 8443)


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::]:8443"`` for IPv6) as its parts; ValueError when it is not one."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('must be "host:port", such as "0.0.0.0:8443"')
    return host, int(port)


class TelegramSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    # Empty: long polling. Set: Telegram posts updates to this URL (webhook mode).
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_listen: str = "0.0.0.0:8443"

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value().strip())

    @property
    def webhook(self) -> bool:
        """Webhook mode (else long polling)."""
        return bool(self.webhook_url)

    @property
    def webhook_path(self) -> str:
        """The path the webhook server answers on: the path of ``webhook_url``."""
        return urlsplit(self.webhook_url).path or "/"

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            parts = urlsplit(value)
            host, port = parts.hostname or "", parts.port
        except ValueError as exc:  # a port that is not a number
            raise ValueError("not a URL") from exc
        if not host:
            raise ValueError("must be a full URL, such as https://bot.example.com:8443/telegram")
        # Telegram calls https only. Plain http is allowed for a loopback host alone, where
        # Telegram can never call anyway: tests, or a proxy on this machine that is not it.
        if parts.scheme == "http" and _loopback(host):
            return value
        if parts.scheme != "https":
            raise ValueError("must be https (Telegram calls webhooks over HTTPS only)")
        if (port or 443) not in _WEBHOOK_PORTS:
            raise ValueError("Telegram calls webhooks on ports 443, 80, 88 and 8443 only")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret and not _WEBHOOK_SECRET.fullmatch(secret):
            # Never echo the value: it is a secret.
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - only")
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, value: str) -> str:
        split_listen(value)
        return value.strip()

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Self:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError(
                "webhook_url needs webhook_secret (1-256 characters of A-Z, a-z, 0-9, _ and -), "
                "which Telegram sends with every update"
            )
        return self


def _int_list(value: object) -> object:
    """A list of integers from TOML, or from the environment as a JSON array (``[0,1]``) or
    a comma/space-separated string (``0,1``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("not a valid JSON list") from None
        return [part for part in text.replace(",", " ").split() if part]
    return value


ShardIds = Annotated[list[int], NoDecode, BeforeValidator(_int_list)]


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base_url: BaseURL = "https://discord.com/api/v10"
    gateway_url: str = ""
    shard_count: int = Field(default=0, ge=0, description="0: one unsharded session")
    shard_ids: ShardIds = Field(default_factory=list, description="empty: every shard")

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value().strip())

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, value: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("shard_count")
        if count is None:  # shard_count itself is wrong; that is the error reported
            return value
        if value and count == 0:
            raise ValueError("shard_ids needs shard_count > 0")
        if len(set(value)) != len(value):
            raise ValueError("a shard id appears twice")
        if any(not 0 <= shard < count for shard in value):
            raise ValueError(f"shard ids go from 0 to {count - 1} (shard_count = {count})")
        return sorted(value)

    @property
    def owned_shards(self) -> tuple[int, ...]:
        """The shard ids this process runs (every one when ``shard_ids`` is empty); empty when
        unsharded."""
        return tuple(self.shard_ids) or tuple(range(self.shard_count))


class StorageSettings(_Section):
    path: str = "data/bot.sqlite3"
    # "postgresql://user:pass@host:5432/db" selects PostgreSQL (several processes, design
    # §9); empty keeps SQLite at ``path``. Secret: it usually carries a password.
    url: SecretStr = SecretStr("")
    pool_size: int = Field(default=10, ge=2, le=100, description="PostgreSQL connections")

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.startswith(("postgresql://", "postgres://")):
            # Never echo the value: it may hold a password.
            raise ValueError("must be a postgresql://user:password@host:port/database URL")
        return SecretStr(url)

    @property
    def location(self) -> str:
        """The database to open: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.url.get_secret_value() or self.path

    @property
    def shared(self) -> bool:
        """Whether several processes may share the database (PostgreSQL)."""
        return bool(self.url.get_secret_value())


class ChatSettings(_Section):
    default_model: str = "gpt-4o-mini"
    system_prompt: str = "You are a helpful assistant in a group chat. Be concise."
    context_tokens: int = Field(default=8000, ge=256)
    model_context_tokens: dict[str, int] = Field(default_factory=dict)
    max_prompt_chars: int = Field(default=8000, ge=1)
    models: list[str] = Field(default_factory=list)
    answer_idle_timeout: float = Field(
        default=180.0, gt=0, description="seconds without new text before an answer is stopped"
    )
    answer_deadline: float = Field(
        default=900.0, gt=0, description="seconds one answer may stream in all"
    )
    max_answer_chars: int = Field(default=100_000, ge=1, description="longest answer kept")
    group_settings: Annotated[Literal["admins", "everyone"], _folded(str.lower)] = "admins"
    max_document_mb: float = Field(
        default=10.0,
        gt=0,
        le=20,
        description="largest file read with a question (Telegram bots download 20 MB at most)",
    )
    max_pdf_pages: int = Field(default=30, ge=1, description="pages of a PDF read")
    max_document_chars: int = Field(
        default=20_000, ge=1, description="longest text read from one file"
    )

    def context_budget(self, model: str) -> int:
        """The token budget for the context sent with ``model``."""
        return self.model_context_tokens.get(model, self.context_tokens)


class LoggingSettings(_Section):
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], _folded(str.upper)] = "INFO"
    format: Annotated[Literal["plain", "json"], _folded(str.lower)] = "plain"


def _id_list(value: object) -> object:
    """Lists of ids: TOML arrays of strings or integers, or (from the environment) a JSON
    array or a comma/space-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError("not a valid JSON list") from None
        else:
            return [part for part in text.replace(",", " ").split() if part]
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value]
    return value


def _shaped(pattern: str, example: str) -> Callable[[list[str]], list[str]]:
    """A check that every id of a list matches ``pattern``."""
    shape = re.compile(pattern)

    def check(values: list[str]) -> list[str]:
        for value in values:
            if not shape.fullmatch(value):
                # Name the expected shape, never the value (it might be a token pasted by mistake).
                raise ValueError(f"entries look like {example}")
        return values

    return check


_IDS = (NoDecode, BeforeValidator(_id_list))
_USER_ID = _shaped(r"(tg|dc):\d+", '"tg:123456789" or "dc:123456789012345678"')
_CHAT_ID = _shaped(r"-?\d+", "-1001234567890 (a Telegram chat id)")
_SNOWFLAKE = _shaped(r"\d+", "123456789012345678 (a Discord id)")
UserIds = Annotated[list[str], *_IDS, AfterValidator(_USER_ID)]
ChatIds = Annotated[list[str], *_IDS, AfterValidator(_CHAT_ID)]
Snowflakes = Annotated[list[str], *_IDS, AfterValidator(_SNOWFLAKE)]


class AccessSettings(_Section):
    """Who may use the bot; every empty list means "open". See ``bot.core.access.policy``."""

    users: UserIds = Field(default_factory=list)
    blocked_users: UserIds = Field(default_factory=list)
    telegram_chats: ChatIds = Field(default_factory=list)
    discord_guilds: Snowflakes = Field(default_factory=list)
    discord_channels: Snowflakes = Field(default_factory=list)
    admins: UserIds = Field(default_factory=list)
    admins_exempt_from_limits: bool = True


class LimitsSettings(_Section):
    """Per-user limits; 0 means unlimited. Quotas count per UTC day."""

    chat_cooldown_seconds: float = Field(default=0.0, ge=0)
    generation_cooldown_seconds: float = Field(default=0.0, ge=0)
    daily_chat_tokens: int = Field(default=0, ge=0)
    daily_imagine: int = Field(default=0, ge=0)
    daily_music: int = Field(default=0, ge=0)
    daily_video: int = Field(default=0, ge=0)
    daily_images: int = Field(default=0, ge=0)
    max_concurrent_tasks: int = Field(default=3, ge=0)


class GenerationSettings(_Section):
    """Midjourney, Suno and Kling tasks: polling, deadlines, prompt limits, defaults, uploads."""

    poll_first_interval: float = Field(default=3.0, gt=0)
    poll_max_interval: float = Field(default=15.0, gt=0)
    poll_growth: float = Field(default=1.5, ge=1.0)
    poll_jitter: float = Field(default=0.1, ge=0, le=0.5)
    poll_batch_window: float = Field(default=1.0, ge=0)
    poll_max_requests: int = Field(default=100, ge=1)
    # Several processes on PostgreSQL: how long a claimed task is one poller's (a dead
    # process's tasks wait this long), and how overdue another chat's task must be before
    # a process that does not post to that chat polls it.
    poll_lease: float = Field(default=30.0, gt=0)
    poll_takeover_grace: float = Field(default=10.0, ge=0)
    mj_deadline: float = Field(default=DEFAULT_DEADLINES[Provider.MIDJOURNEY], gt=0)
    suno_deadline: float = Field(default=DEFAULT_DEADLINES[Provider.SUNO], gt=0)
    kling_deadline: float = Field(default=DEFAULT_DEADLINES[Provider.KLING], gt=0)
    progress_edit_interval: float = Field(default=3.0, ge=0)
    mj_max_prompt_chars: int = Field(default=4000, ge=1)
    suno_max_prompt_chars: int = Field(default=500, ge=1)
    suno_max_lyrics_chars: int = Field(default=3000, ge=1)
    suno_max_style_chars: int = Field(default=200, ge=1)
    kling_max_prompt_chars: int = Field(default=2500, ge=1)
    suno_model: str = "chirp-v4"
    kling_model: str = "kling-v2-1"
    kling_duration: Literal[5, 10] = 5
    kling_aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    telegram_photo_max_mb: float = Field(default=10.0, gt=0)
    telegram_upload_max_mb: float = Field(default=50.0, gt=0)
    discord_upload_max_mb: float = Field(default=10.0, gt=0)
    mj_allow_speed_flags: bool = False
    buttons_owner_only: bool = True
    download_timeout: float = Field(default=300.0, gt=0)
    download_min_rate_kb: float = Field(default=16.0, ge=0)
    download_max_mb: float = Field(default=50.0, gt=0)


class ImagesSettings(_Section):
    """``/image``: the OpenAI images API (generations, and edits with a photo); every key is
    explained in ``config.example.toml``."""

    model: str = Field(default="gpt-image-1", min_length=1)
    size: str = "1024x1024"
    quality: str = ""
    models: list[str] = Field(default_factory=lambda: ["gpt-image-1", "dall-e-3"])
    max_prompt_chars: int = Field(default=4000, ge=1)
    timeout: float = Field(default=180.0, gt=0)

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: list[str]) -> list[str]:
        models = [m.strip() for m in value if m.strip()]
        if len(models) > 25:
            raise ValueError("at most 25 models (Discord shows 25 choices)")
        return models


class HttpSettings(_Section):
    """The optional operations endpoint: /healthz and /metrics."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=0, le=65535)


class VoiceSettings(_Section):
    """Voice notes and audio files: transcribed, shown, then answered as chat turns."""

    enabled: bool = True
    transcription_model: str = "whisper-1"
    max_seconds: int = Field(default=300, ge=1)
    max_mb: float = Field(default=20.0, gt=0)
    speech: bool = True
    speech_model: str = "tts-1"
    speech_voice: str = "alloy"
    speech_max_chars: int = Field(default=1000, ge=1, le=4096)


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
