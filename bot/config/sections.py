"""The features' sections: storage, chat, logging, access, limits, generation, images, the
operations endpoint and voice."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bot.config.base import _folded, _Section
from bot.core.generation.records import DEFAULT_DEADLINES, Provider


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
