"""Configuration: a TOML file plus ``BOT_<SECTION>__<KEY>`` environment overrides.

The section and key names are part of the product (operators write them; see
``config.example.toml``). Secrets are :class:`pydantic.SecretStr` so they never
show up in a repr, a log line or an error message.

Every way loading can fail becomes a :class:`ConfigError` whose message is one
line an operator can act on; ``python -m bot`` prints it and exits.
"""

from bot.config.loading import ConfigError, Settings, check_can_run, load_settings
from bot.config.platforms import DiscordSettings, TelegramSettings, split_listen
from bot.config.sections import (
    AccessSettings,
    ChatSettings,
    GenerationSettings,
    HttpSettings,
    LimitsSettings,
    LoggingSettings,
    StorageSettings,
)

# What the rest of the project imports from ``bot.config``; the sections' own modules are
# how the package is arranged, not part of what it offers.
__all__ = [
    "AccessSettings",
    "ChatSettings",
    "ConfigError",
    "DiscordSettings",
    "GenerationSettings",
    "HttpSettings",
    "LimitsSettings",
    "LoggingSettings",
    "Settings",
    "StorageSettings",
    "TelegramSettings",
    "check_can_run",
    "load_settings",
    "split_listen",
]
