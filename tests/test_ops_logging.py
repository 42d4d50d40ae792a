"""Logging: JSON/plain lines with request context, and no secret in any captured line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from bot.config import LoggingSettings, Settings
from bot.core.logcontext import bind_log_context, current_log_context, log_context
from bot.ops.logging import secret_values, setup_logging

API_KEY = "sk-test1234567890abcdefSECRET"
TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DC_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789"
SECRETS = (API_KEY, TG_TOKEN, DC_TOKEN)


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, list[logging.Handler]]]:
    root = logging.getLogger()
    saved_level = root.level
    saved_handlers = list(root.handlers)
    stream = io.StringIO()
    installed: list[logging.Handler] = []
    yield stream, installed
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    logging.captureWarnings(False)


def install(
    capture: tuple[io.StringIO, list[logging.Handler]], fmt: str = "json", level: str = "DEBUG"
) -> io.StringIO:
    stream, installed = capture
    handler = setup_logging(
        LoggingSettings(level=level, format=fmt),  # type: ignore[arg-type]
        secrets=SECRETS,
        stream=stream,
    )
    installed.append(handler)
    return stream


def emit_everything_that_could_leak() -> None:
    log = logging.getLogger("bot.test")
    log.info("key is %s", API_KEY)
    log.warning("calling https://api.telegram.org/bot%s/getMe", TG_TOKEN)
    log.info("encoded %s", quote(TG_TOKEN, safe=""))
    log.info("token half %s", TG_TOKEN.split(":")[1])
    log.info("discord %r", {"Authorization": f"Bot {DC_TOKEN}"})
    log.info("header Authorization: Bearer %s", "unconfigured-but-bearer-9f8e7d")
    log.info("a pasted key sk-abcdefghijklmnopqrstuv0000 and %d%% done", 50)
    try:
        raise ValueError(f"upstream echoed {API_KEY}")
    except ValueError:
        log.exception("request failed")
    log.error("with stack", stack_info=True, extra={"request_id": API_KEY})
    logging.getLogger("telegram.ext").error("library line with %s", TG_TOKEN)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated thing {DC_TOKEN}", UserWarning, stacklevel=1)


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_no_secret_survives_in_any_line(
    capture: tuple[io.StringIO, list[logging.Handler]], fmt: str
) -> None:
    stream = install(capture, fmt)
    emit_everything_that_could_leak()
    out = stream.getvalue()
    assert out.count("\n") >= 10
    for secret in (*SECRETS, quote(TG_TOKEN, safe=""), TG_TOKEN.split(":")[1]):
        assert secret not in out
    assert "unconfigured-but-bearer" not in out
    assert "sk-abcdefghijklmnopqrstuv0000" not in out
    assert "***" in out
    assert "50% done" in out
    assert "ValueError: upstream echoed ***" in out  # the traceback is kept, redacted


def test_json_lines_parse_and_carry_the_request_context(
    capture: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    stream = install(capture, "json")
    log = logging.getLogger("bot.platforms.telegram.bot")

    async def handle_update() -> None:
        with log_context(platform="tg", chat=-100123):
            log.info("update received")
            bind_log_context(request_id="req-abc")
            # A task started here inherits the context.
            await asyncio.create_task(_log_in_task(log))
            with log_context(task=7):
                log.info("task submitted")
            log.info("reply sent")
        log.info("outside")
        assert current_log_context() == {}

    asyncio.run(handle_update())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # every line is JSON
    by_message = {e["message"]: e for e in lines if e["logger"] == "bot.platforms.telegram.bot"}
    assert set(by_message) == {
        "update received",
        "in a task",
        "task submitted",
        "reply sent",
        "outside",
    }
    first = by_message["update received"]
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.platforms.telegram.bot"
    assert first["time"].endswith("Z")
    assert (first["platform"], first["chat"]) == ("tg", "-100123")
    assert "request_id" not in first
    assert by_message["in a task"]["request_id"] == "req-abc"
    assert by_message["task submitted"]["task"] == "7"
    assert by_message["task submitted"]["platform"] == "tg"
    assert "task" not in by_message["reply sent"]
    assert by_message["reply sent"]["request_id"] == "req-abc"
    assert not {"platform", "chat", "request_id"} & set(by_message["outside"])


async def _log_in_task(log: logging.Logger) -> None:
    log.info("in a task")


def test_plain_lines_end_with_the_context(
    capture: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    stream = install(capture, "plain", level="INFO")
    log = logging.getLogger("bot.core.chat.service")
    with log_context(platform="dc", chat="55", request_id="r1"):
        log.info("answered %d tokens", 12)
    log.debug("hidden at INFO")
    logging.getLogger("httpx").info("HTTP Request: GET ... 200")  # held at WARNING
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(
        "INFO bot.core.chat.service: answered 12 tokens [platform=dc chat=55 request_id=r1]"
    )


def test_setup_twice_keeps_one_handler(capture: tuple[io.StringIO, list[logging.Handler]]) -> None:
    install(capture)
    stream = install(capture)
    logging.getLogger("bot").warning("once")
    assert stream.getvalue().count("once") == 1
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_cometbot_handler", False)]
    assert len(ours) == 1


def test_secret_values_come_from_the_settings() -> None:
    settings = Settings(
        cometapi={"api_key": API_KEY}, telegram={"token": TG_TOKEN}, discord={"token": DC_TOKEN}
    )
    assert set(secret_values(settings)) - {""} == set(SECRETS)


def test_the_database_password_and_webhook_secret_are_secrets_too(
    capture: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    url = "postgresql://bot:correct-horse-battery@db:5432/bot"
    settings = Settings(
        storage={"url": url},
        telegram={"token": TG_TOKEN, "webhook_secret": "webhook-secret-value-42"},
    )
    assert {url, "correct-horse-battery", "webhook-secret-value-42"} <= set(secret_values(settings))
    stream, installed = capture
    installed.append(
        setup_logging(LoggingSettings(), secrets=secret_values(settings), stream=stream)
    )
    logging.getLogger("bot").warning("asyncpg said: bad password correct-horse-battery")
    assert "correct-horse-battery" not in stream.getvalue()


def test_unknown_context_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown log context fields: prompt"):
        bind_log_context(prompt="hello")


def test_discord_voice_warnings_are_dropped_and_other_warnings_kept(
    capture: tuple[io.StringIO, list[logging.Handler]],
) -> None:
    install(capture, "plain", level="INFO")
    stream = install(capture, "plain", level="INFO")  # twice: still one filter
    discord_log = logging.getLogger("discord.client")
    discord_log.warning("PyNaCl is not installed, voice will NOT be supported")
    discord_log.warning("davey is not installed, voice will NOT be supported")
    discord_log.warning("Shard ID %s heartbeat blocked", None)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("Shard ID None heartbeat blocked")
    assert len(discord_log.filters) == 1
