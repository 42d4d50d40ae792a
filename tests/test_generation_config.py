"""The [generation] section: documented key by key, and what the app builds from it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.app import generation_configs, media_limits
from bot.config import GenerationSettings, Settings, load_settings
from bot.core.generation.records import Provider
from bot.core.models import Platform

ROOT = Path(__file__).resolve().parents[1]


def test_every_generation_key_is_documented_with_its_default() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    section = example["generation"]
    defaults = GenerationSettings()
    assert set(section) == set(GenerationSettings.model_fields)
    for key, value in section.items():
        assert getattr(defaults, key) == value, key
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in section:
        assert f"| `generation.{key}` |" in readme, key
    assert load_settings(ROOT / "config.example.toml").generation == defaults


def test_the_app_builds_the_engine_settings_from_the_section() -> None:
    settings = Settings(
        generation={
            "poll_first_interval": 2,
            "mj_deadline": 600,
            "mj_max_prompt_chars": 99,
            "suno_model": "chirp-auk",
            "telegram_photo_max_mb": 5,
            "telegram_upload_max_mb": 2000,
        }
    )
    generation, poller = generation_configs(settings)
    assert generation.first_interval == poller.first_interval == 2
    assert generation.deadlines[Provider.MIDJOURNEY] == poller.deadlines[Provider.MIDJOURNEY] == 600
    assert generation.limits.mj == 99 and generation.suno_model == "chirp-auk"
    telegram = media_limits(settings, Platform.TELEGRAM)
    assert (telegram.photo_max_bytes, telegram.upload_max_bytes) == (5 << 20, 2000 << 20)
    discord = media_limits(settings, Platform.DISCORD)
    assert discord.photo_max_bytes == discord.upload_max_bytes == 10 << 20
