"""cometbot: one service that is a Discord and a Telegram bot over CometAPI."""

__version__ = "0.1.0"
