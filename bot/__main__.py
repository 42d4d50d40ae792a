"""``python -m bot [--config PATH] [console]``: load the configuration and run the service."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, check_can_run, load_settings


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="cometbot: a Discord and Telegram bot over CometAPI.",
    )
    parser.add_argument(
        "--config",
        default="config.toml",
        metavar="PATH",
        help="TOML configuration file (default: ./config.toml)",
    )
    parser.add_argument(
        "mode",
        nargs="?",
        choices=["run", "console"],
        default="run",
        help="run the bots (default), or chat in this terminal with `console`",
    )
    return parser.parse_args(argv)


def configure_logging(settings: Settings) -> None:
    """Level and format from ``[logging]``; the configured secrets are redacted from every line
    and the libraries' per-request INFO noise is held back (see :mod:`bot.ops.logging`)."""
    from bot.ops.logging import secret_values, setup_logging

    setup_logging(settings.logging, secrets=secret_values(settings))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    console = args.mode == "console"
    try:
        settings = load_settings(args.config)
        check_can_run(settings, console=console, path=args.config)
    except ConfigError as exc:
        print(f"cometbot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)

    from bot import app
    from bot.launch import StartupError
    from bot.ops.runtime import run

    try:
        if console:
            return run(app.run_console(settings))
        return run(app.run_service(settings))
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        print(f"cometbot: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
