"""The /imagine, /music and /video text syntax and the prompt checks."""

from __future__ import annotations

import pytest

from bot.core.errors import UserFacingError
from bot.core.generation.prompts import (
    MusicSpec,
    PromptLimits,
    VideoSpec,
    check_imagine,
    parse_music,
    parse_video,
)
from bot.core.generation.views import button_rows, progress_bar
from bot.core.models import ButtonView

LIMITS = PromptLimits(mj=200, suno_description=50, suno_lyrics=100, suno_style=20, kling=40)


def video(text: str, **kw: bool) -> VideoSpec:
    return parse_video(text, LIMITS, default_duration=5, default_aspect="16:9", **kw)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a boat --ar 16:9 --v 6.1", "a boat --ar 16:9 --v 6.1"),
        ("a  boat\n--no  cars --stylize 250", "a boat --no cars --stylize 250"),
        ("https://img.test/a.png a boat --iw 2 --weird 300", None),
        ("a boat --zoom 1.5", None),
    ],
)
def test_midjourney_parameters_pass_through(prompt: str, expected: str | None) -> None:
    assert check_imagine(prompt, LIMITS) == (expected or prompt)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "Tell me what to imagine"),
        ("a boat --ar 16x9", "--ar needs width:height"),
        ("a boat --chaos 101", "--chaos needs a number from 0 to 100"),
        ("a boat --s", "--s needs a number from 0 to 1000"),
        ("a boat --v six", "--v needs a version number"),
        ("a boat --relax", "Please remove --relax"),
        ("--ar 1:1 https://img.test/a.png", "Add some words"),
        ("x" * 201, "too long"),
    ],
)
def test_malformed_midjourney_prompts_are_refused(prompt: str, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        check_imagine(prompt, LIMITS)


def test_music_inspiration_and_custom_modes() -> None:
    assert parse_music("an upbeat song", LIMITS) == MusicSpec(description="an upbeat song")
    assert parse_music("--instrumental  calm   piano", LIMITS) == MusicSpec(
        description="calm piano", instrumental=True
    )
    text = "--style emotional punk --title City Lights\n[Verse]\nNeon lights\n\n[Chorus]\nla"
    assert parse_music(text, LIMITS) == MusicSpec(
        lyrics="[Verse]\nNeon lights\n\n[Chorus]\nla", style="emotional punk", title="City Lights"
    )
    assert parse_music("--tags lofi --instrumental", LIMITS) == MusicSpec(
        style="lofi", instrumental=True
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Describe the song"),
        ("--loud a song", r"Unknown option --loud\. Options: --instrumental, --style, --title"),
        ("--title Song\nla la", "need a style"),
        ("--style punk", "Put the lyrics"),
        ("--style\nla", "--style needs a value"),
        ("x" * 51, "too long"),
        ("--style " + "x" * 21 + "\nla", "The style is too long"),
    ],
)
def test_bad_music_requests_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        parse_music(text, LIMITS)


def test_video_options_anywhere() -> None:
    assert video("a boat") == VideoSpec("a boat", 5, "16:9")
    assert video("--duration 10 a boat --ar 9:16") == VideoSpec("a boat", 10, "9:16")
    assert video("a boat --aspect 1:1 --duration 5s") == VideoSpec("a boat", 5, "1:1")
    assert video("", image=True) == VideoSpec("", 5, "16:9")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Describe the video"),
        ("a boat --duration 7", "5 or 10"),
        ("a boat --aspect 4:3", "16:9, 9:16 or 1:1"),
        ("a boat --speed 2", r"Unknown option --speed"),
        ("a boat --duration", "needs a value"),
        ("x" * 41, "too long"),
    ],
)
def test_bad_video_requests_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        video(text)


def test_progress_bar_and_button_rows() -> None:
    assert progress_bar(0) == "▱▱▱▱▱▱▱▱▱▱ 0%"
    assert progress_bar(45) == "▰▰▰▰▱▱▱▱▱▱ 45%"
    assert progress_bar(100) == "▰▰▰▰▰▰▰▰▰▰ 100%"
    grid = [ButtonView(f"t{n}", f"U{n}") for n in range(1, 5)] + [ButtonView("r", "", "🔄")]
    grid += [ButtonView(f"v{n}", f"V{n}") for n in range(1, 5)]
    assert [[b.text for b in row] for row in button_rows(grid)] == [
        ["U1", "U2", "U3", "U4", "🔄"],
        ["V1", "V2", "V3", "V4"],
    ]
    upscale = [
        ButtonView("a", "Upscale (Subtle)"),
        ButtonView("b", "Upscale (Creative)"),
        ButtonView("c", "Vary (Strong)", "🪄"),
        ButtonView("d", "Vary (Subtle)", "🪄"),
        ButtonView("e", "Zoom Out 2x", "🔍"),
        *(ButtonView(d, "", e) for d, e in (("l", "⬅️"), ("r", "➡️"), ("u", "⬆️"), ("w", "⬇️"))),
    ]
    assert [len(row) for row in button_rows(upscale)] == [3, 2, 4]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a cat \u2014turbo", "Please remove --turbo"),
        ("a cat \u2013relax", "Please remove --relax"),
        ("a cat \u2212\u2212fast", "Please remove --fast"),
        ("a cat -\u200b-turbo", "Please remove --turbo"),
        ("a cat --\uff54\uff55\uff52\uff42\uff4f", "Please remove --turbo"),
        ("a cat --turbo,", "Please remove --turbo"),
        ("a cat --repeat 40", "Please remove --repeat"),
        ("a cat \u2014r 4", "Please remove --r"),
        ("a cat --repeat=4", "Please remove --repeat"),
        ("a cat --q 4", "--q must be .25, .5 or 1"),
        ("a cat --q4", "--q must be .25, .5 or 1"),
        ("a cat --quality 2", "--quality must be .25, .5 or 1"),
        ("a cat --q", "--q must be .25, .5 or 1"),
        ("\u200b\u200c \u200d\u2060\ufeff\u3164", "Tell me what to imagine"),
    ],
)
def test_costly_or_disguised_midjourney_parameters_are_refused(prompt: str, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        check_imagine(prompt, LIMITS)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat \u2014ar 16:9 --q .5", "a cat --ar 16:9 --q .5"),
        ("a cat \u2014 sitting on a well-known -ish mat", None),
        ("a cat \u200b --raw --q 1", "a cat --raw --q 1"),
    ],
)
def test_dashes_are_normalised_and_harmless_ones_kept(prompt: str, expected: str | None) -> None:
    assert check_imagine(prompt, LIMITS) == (expected or prompt)


def test_operators_may_allow_speed_flags() -> None:
    limits = PromptLimits(mj_speed_flags=True)
    assert check_imagine("a cat \u2014turbo", limits) == "a cat --turbo"
    with pytest.raises(UserFacingError, match="--repeat"):
        check_imagine("a cat --fast --repeat 2", limits)


@pytest.mark.parametrize("blank", ["\u200b", " \u2060\ufeff ", "\u200c\u200d"])
def test_invisible_music_and_video_prompts_are_empty(blank: str) -> None:
    with pytest.raises(UserFacingError, match="Describe the song"):
        parse_music(blank, LIMITS)
    with pytest.raises(UserFacingError, match="Describe the video"):
        video(blank)
