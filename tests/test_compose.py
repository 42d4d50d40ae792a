"""docker-compose.yml says what the README promises: PostgreSQL and two bot replicas, the
database URL given through the environment key the bot reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


def test_compose_runs_postgres_and_two_replicas() -> None:
    assert re.search(r"^  postgres:\n    image: postgres:", COMPOSE, re.MULTILINE)
    assert re.search(r"^  bot:\n    build: \.", COMPOSE, re.MULTILINE)
    assert "replicas: 2" in COMPOSE
    assert "condition: service_healthy" in COMPOSE


def test_the_compose_database_url_selects_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    match = re.search(r"BOT_STORAGE__URL: (\S+)", COMPOSE)
    assert match is not None
    url = match.group(1).replace("${POSTGRES_PASSWORD}", "s3cret")
    monkeypatch.setenv("BOT_STORAGE__URL", url)
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    storage = load_settings(config).storage
    assert (
        storage.shared and storage.location == "postgresql://cometbot:s3cret@postgres:5432/cometbot"
    )
    assert "s3cret" not in repr(storage)


def test_a_storage_url_that_is_not_postgresql_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    from bot.config import ConfigError

    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "mysql://root:hunter2@db/bot"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "[storage] url" in str(info.value) and "postgresql://" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.e2e
def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    from tests.test_config import _closed_port, _one_line, _start_env, run_bot

    url = f"postgresql://bot:hunter2@127.0.0.1:{_closed_port()}/bot"
    env = _start_env(tmp_path, BOT_TELEGRAM__TOKEN="123456:TEST", BOT_STORAGE__URL=url)
    result = run_bot("--config", "config.example.toml", env_extra=env)
    _one_line(result, f"cannot open the database postgresql://bot@127.0.0.1:{url.split(':')[3]}")
    assert "hunter2" not in result.stderr + result.stdout
