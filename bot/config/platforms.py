"""The platforms' sections: ``[cometapi]``, ``[telegram]`` (webhook checks included) and
``[discord]`` (shard checks included)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from bot.config.base import BaseURL, _Section


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
