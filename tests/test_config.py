"""Configuration: file + environment, and one clear line for every way it can be wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, check_can_run, load_settings

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith("BOT_"):
            monkeypatch.delenv(key)


def test_example_config_loads_with_every_default() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.cometapi.base_url == "https://api.cometapi.com"
    assert settings.telegram.api_base_url == "https://api.telegram.org/bot"
    assert settings.discord.gateway_url == ""
    assert settings.storage.path == "data/bot.sqlite3"
    assert settings.chat.default_model == "gpt-4o-mini"
    assert settings.images.model == "gpt-image-1" and settings.limits.daily_images == 0
    assert settings.images.models == ["gpt-image-1", "dall-e-3"]
    assert not settings.telegram.enabled
    assert not settings.discord.enabled


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[cometapi]\napi_key = "from-file"\n[chat]\ncontext_tokens = 1000\n')
    monkeypatch.setenv("BOT_COMETAPI__API_KEY", "from-env")
    monkeypatch.setenv("BOT_TELEGRAM__TOKEN", "123:abc")
    monkeypatch.setenv("BOT_CHAT__CONTEXT_TOKENS", "2048")
    settings = load_settings(path)
    assert settings.cometapi.api_key.get_secret_value() == "from-env"
    assert settings.telegram.enabled
    assert settings.chat.context_tokens == 2048


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    path = write(tmp_path, '[cometapi]\napi_key = "sk-secret-value"\n[discord]\ntoken = "tok-1"\n')
    settings = load_settings(path)
    assert "sk-secret-value" not in repr(settings)
    assert "tok-1" not in str(settings)


def test_base_urls_lose_trailing_slash(tmp_path: Path) -> None:
    path = write(tmp_path, '[cometapi]\nbase_url = "http://127.0.0.1:9/"\n')
    assert load_settings(path).cometapi.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[chat]\nfoo = 1\n", "unknown key [chat] foo"),
        ('[chatt]\ndefault_model = "x"\n', "unknown section or key [chatt]"),
        (
            '[chat]\ncontext_tokens = "many"\n',
            "[chat] context_tokens: input should be a valid integer",
        ),
        (
            "[chat]\ncontext_tokens = 10\n",
            "[chat] context_tokens: input should be greater than or equal to 256",
        ),
        ('[logging]\nlevel = "LOUD"\n', "[logging] level: input should be"),
        ('chat = "x"\n', "[chat] must be a table"),
        ('[cometapi]\napi_key = "unterminated\n', "invalid TOML"),
    ],
)
def test_malformed_config_gives_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message


def test_discord_shards_default_to_one_unsharded_session(tmp_path: Path) -> None:
    discord = load_settings(write(tmp_path, "")).discord
    assert (discord.shard_count, discord.shard_ids, discord.owned_shards) == (0, [], ())
    discord = load_settings(write(tmp_path, "[discord]\nshard_count = 3\n")).discord
    assert discord.owned_shards == (0, 1, 2)  # no shard_ids: every shard
    text = "[discord]\nshard_count = 4\nshard_ids = [3, 1]\n"
    assert load_settings(write(tmp_path, text)).discord.owned_shards == (1, 3)


@pytest.mark.parametrize("value", ["[0,2]", "0,2", "0 2"])
def test_shard_ids_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BOT_DISCORD__SHARD_COUNT", "4")
    monkeypatch.setenv("BOT_DISCORD__SHARD_IDS", value)
    discord = load_settings(write(tmp_path, "[discord]\nshard_ids = [1]\n")).discord
    assert (discord.shard_count, discord.shard_ids) == (4, [0, 2])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shard_count = -1", "[discord] shard_count: input should be greater than or equal to 0"),
        (
            "shard_count = 2\nshard_ids = [2]",
            "[discord] shard_ids: shard ids go from 0 to 1",
        ),
        (
            "shard_count = 2\nshard_ids = [-1]",
            "[discord] shard_ids: shard ids go from 0",
        ),
        (
            "shard_count = 2\nshard_ids = [1, 1]",
            "[discord] shard_ids: a shard id appears twice",
        ),
        ("shard_ids = [0]", "[discord] shard_ids: shard_ids needs shard_count > 0"),
        (
            'shard_count = 2\nshard_ids = ["x"]',
            "[discord] shard_ids.0: input should be a valid integer",
        ),
        ("shard_count = 2\nshard_ids = 1", "[discord] shard_ids: input should be a valid list"),
    ],
)
def test_invalid_shards_give_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, f"[discord]\n{text}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_bad_shard_ids_in_the_environment_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_DISCORD__SHARD_IDS", "[0,")
    path = write(tmp_path, "[discord]\nshard_count = 2\n")
    with pytest.raises(
        ConfigError, match=r"^BOT_DISCORD__SHARD_IDS: \[discord\] shard_ids: .*JSON"
    ):
        load_settings(path)


def test_toml_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[cometapi]\n\napi_key = = "x"\n')
    with pytest.raises(ConfigError, match=r"line 3"):
        load_settings(path)


def test_wrong_type_never_echoes_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[cometapi]\ntimeout = "sk-looks-like-a-key"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "sk-looks-like-a-key" not in str(info.value)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "")
    monkeypatch.setenv("BOT_CHAT__CONTEXT_TOKENS", "lots")
    with pytest.raises(ConfigError, match=r"^BOT_CHAT__CONTEXT_TOKENS: \[chat\] context_tokens"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file; copy config\.example\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_missing_api_key_and_platform_tokens(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    with pytest.raises(ConfigError, match=r"set \[cometapi\] api_key"):
        check_can_run(settings, console=True, path="config.toml")
    settings = load_settings(write(tmp_path, '[cometapi]\napi_key = "k"\n'))
    check_can_run(settings, console=True, path="config.toml")  # the console needs only the key
    with pytest.raises(ConfigError, match=r"no platform is on"):
        check_can_run(settings, console=False, path="config.toml")
    settings = load_settings(write(tmp_path, '[cometapi]\napi_key = "k"\n[discord]\ntoken = "t"\n'))
    check_can_run(settings, console=False, path="config.toml")


def run_bot(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.e2e
def test_entry_point_with_example_config_exits_with_one_line() -> None:
    result = run_bot("--config", "config.example.toml")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "api_key" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_entry_point_without_platform_tokens_says_what_to_set() -> None:
    result = run_bot(
        "--config", "config.example.toml", env_extra={"BOT_COMETAPI__API_KEY": "sk-test"}
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BOT_TELEGRAM__TOKEN" in lines[0]
    assert "sk-test" not in result.stderr


@pytest.mark.e2e
def test_entry_point_with_broken_file_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[chat]\ndefault_model = \n")
    result = run_bot("--config", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "line 2" in result.stderr


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # WARNING: the one line must be all there is (the INFO lines of a normal start aside).
    return {
        "BOT_COMETAPI__API_KEY": "sk-test",
        "BOT_STORAGE__PATH": str(tmp_path / "bot.sqlite3"),
        "BOT_LOGGING__LEVEL": "WARNING",
        **extra,
    }


def _one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and expected in lines[0], result.stderr
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr
    assert "PyNaCl" not in result.stderr and "voice will NOT" not in result.stderr


@pytest.mark.e2e
def test_entry_point_that_cannot_reach_telegram_says_one_line_and_closes_everything(
    tmp_path: Path,
) -> None:
    env = _start_env(
        tmp_path,
        BOT_TELEGRAM__TOKEN="123456:TEST",
        BOT_TELEGRAM__API_BASE_URL=f"http://127.0.0.1:{_closed_port()}/bot",
        BOT_DISCORD__TOKEN="discord-token",  # on too: never started, nothing left open
    )
    result = run_bot("--config", "config.example.toml", env_extra=env)
    _one_line(result, "cannot reach Telegram")


@pytest.mark.e2e
def test_entry_point_that_cannot_reach_discord_says_one_line_without_voice_noise(
    tmp_path: Path,
) -> None:
    env = _start_env(
        tmp_path,
        BOT_DISCORD__TOKEN="discord-token",
        BOT_DISCORD__API_BASE_URL=f"http://127.0.0.1:{_closed_port()}/api/v10",
    )
    result = run_bot("--config", "config.example.toml", env_extra=env)
    _one_line(result, "cannot reach Discord")


@pytest.mark.e2e
def test_entry_point_whose_http_port_is_taken_says_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _start_env(
            tmp_path,
            BOT_TELEGRAM__TOKEN="123456:TEST",
            BOT_HTTP__ENABLED="true",
            BOT_HTTP__PORT=str(taken.getsockname()[1]),
        )
        result = run_bot("--config", "config.example.toml", env_extra=env)
    _one_line(result, "cannot serve [http]")


async def _run_bot_async(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m bot`` while the test's own fakes serve on this event loop."""
    import asyncio
    import os

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    env |= env_extra
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        "config.example.toml",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())


@pytest.mark.e2e
async def test_entry_point_with_a_refused_telegram_token_closes_everything(
    tmp_path: Path,
) -> None:
    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram(token="123456:TEST") as tg:
        env = _start_env(
            tmp_path,
            BOT_TELEGRAM__TOKEN="123456:WRONG",
            BOT_TELEGRAM__API_BASE_URL=tg.api_base_url,
        )
        result = await _run_bot_async(env)
    _one_line(result, "Telegram refused [telegram] token")


@pytest.mark.e2e
async def test_entry_point_whose_discord_fails_after_telegram_started_closes_both(
    tmp_path: Path,
) -> None:
    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram(token="123456:TEST") as tg:
        env = _start_env(
            tmp_path,
            BOT_TELEGRAM__TOKEN="123456:TEST",
            BOT_TELEGRAM__API_BASE_URL=tg.api_base_url,
            BOT_TELEGRAM__FILE_BASE_URL=tg.file_base_url,
            BOT_DISCORD__TOKEN="discord-token",
            BOT_DISCORD__API_BASE_URL=f"http://127.0.0.1:{_closed_port()}/api/v10",
        )
        result = await _run_bot_async(env)
        assert tg.calls("setMyCommands")  # Telegram had started before Discord failed
    _one_line(result, "cannot reach Discord")


@pytest.mark.e2e
async def test_entry_point_whose_webhook_port_is_taken_says_one_line(tmp_path: Path) -> None:
    import socket

    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram(token="123456:TEST") as tg:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = _start_env(
                tmp_path,
                BOT_TELEGRAM__TOKEN="123456:TEST",
                BOT_TELEGRAM__API_BASE_URL=tg.api_base_url,
                BOT_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/tg",
                BOT_TELEGRAM__WEBHOOK_SECRET="secret",
                BOT_TELEGRAM__WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            )
            result = await _run_bot_async(env)
    _one_line(result, f"cannot serve the Telegram webhook on 127.0.0.1:{port}")
