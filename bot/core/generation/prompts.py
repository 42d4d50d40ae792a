"""Prompt checks and the text syntax of /imagine, /music and /video options.

Everything here runs before anything is stored or sent upstream, and raises
:class:`~bot.core.errors.UserFacingError` with a sentence saying what to fix.

Syntax (platforms with structured options, like Discord, build the specs directly and call
the ``check_*`` functions):

* ``/imagine PROMPT`` — Midjourney parameters (``--ar 16:9``, ``--v 6.1``, ...) pass
  through; a few common ones are checked for malformed values.
* ``/music [--instrumental] DESCRIPTION`` — Suno writes lyrics, title and style;
  ``/music --style STYLE [--title TITLE] [--instrumental]`` followed by lyrics on the next
  lines is custom mode. Options come first; each value runs to the end of its line or the
  next ``--option``.
* ``/video [--duration 5|10] [--aspect 16:9|9:16|1:1] PROMPT`` — options anywhere.
* the answer to a Midjourney modal (:func:`modal_prompt`): a prompt, or for Custom Zoom a
  factor from 1 to 2.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from bot.core.errors import UserFacingError
from bot.core.generation.records import Task
from bot.core.text import is_blank

__all__ = [
    "ASPECT_RATIOS",
    "DURATIONS",
    "MusicSpec",
    "PromptLimits",
    "VideoSpec",
    "check_imagine",
    "check_music",
    "check_video",
    "modal_prompt",
    "parse_music",
    "parse_video",
]

DURATIONS: Final = (5, 10)
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
_OPTION = re.compile(r"--([A-Za-z][\w-]*)")
_ZOOM = re.compile(r"(?:--zoom\s+)?([12](?:\.\d+)?)x?", re.IGNORECASE)
_OLD_ZOOM = re.compile(r"\s*--zoom\s+\S+", re.IGNORECASE)
_SPEED_FLAGS: Final = frozenset({"fast", "relax", "turbo"})
_REPEAT_FLAGS: Final = frozenset({"repeat", "r"})
_QUALITY_FLAGS: Final = frozenset({"q", "quality"})
# The one quota unit is a grid at the default quality; lower qualities cost less.
_QUALITIES: Final = frozenset({0.25, 0.5, 1.0})
# A token that starts with dashes (or their lookalikes: phone keyboards turn "--" into an em
# dash, and Midjourney reads an em dash as "--"), possibly with invisible characters between.
_DASH_RUN = re.compile(
    "^[-\u00ad\u2010-\u2015\u2043\u2212\u2796\u2e3a\u2e3b\ufe58\ufe63\uff0d"
    "\u200b-\u200d\u2060\ufeff]+"
)
_NAME = re.compile(r"[a-z]+")
# Midjourney parameters whose values are easy to get wrong: name -> (pattern, hint).
_MJ_CHECKS: Final = {
    "ar": (r"\d+:\d+", "--ar needs width:height, e.g. --ar 16:9"),
    "aspect": (r"\d+:\d+", "--aspect needs width:height, e.g. --aspect 16:9"),
    "chaos": (r"(100|[1-9]?\d)", "--chaos needs a number from 0 to 100"),
    "c": (r"(100|[1-9]?\d)", "--c needs a number from 0 to 100"),
    "stylize": (r"(1000|[1-9]?\d{1,2})", "--stylize needs a number from 0 to 1000"),
    "s": (r"(1000|[1-9]?\d{1,2})", "--s needs a number from 0 to 1000"),
    "v": (r"\d+(\.\d+)?", "--v needs a version number, e.g. --v 6.1"),
    "version": (r"\d+(\.\d+)?", "--version needs a number, e.g. --version 6.1"),
    "niji": (r"\d+", "--niji needs a version number, e.g. --niji 6"),
    "seed": (r"\d{1,10}", "--seed needs a whole number"),
    "zoom": (r"[12](\.\d+)?", "--zoom needs a number from 1 to 2"),
}


@dataclass(frozen=True, slots=True)
class PromptLimits:
    """Longest accepted inputs, in characters, and whether Midjourney speed flags may be
    typed (``[generation]`` keys)."""

    mj: int = 4000
    suno_description: int = 500
    suno_lyrics: int = 3000
    suno_style: int = 200
    kling: int = 2500
    mj_speed_flags: bool = False


@dataclass(frozen=True, slots=True)
class MusicSpec:
    """A song request: inspiration mode (``description``) or custom mode (``style`` and/or
    ``lyrics``, with an optional ``title``)."""

    description: str = ""
    lyrics: str = ""
    style: str = ""
    title: str = ""
    instrumental: bool = False

    @property
    def custom(self) -> bool:
        return bool(self.lyrics or self.style or self.title)


@dataclass(frozen=True, slots=True)
class VideoSpec:
    prompt: str
    duration: int = 5
    aspect_ratio: str = "16:9"


def _too_long(what: str, size: int, limit: int) -> UserFacingError:
    return UserFacingError(f"{what} too long ({size:,} characters); the limit is {limit:,}.")


def check_imagine(prompt: str, limits: PromptLimits) -> str:
    """A Midjourney prompt, trimmed, its parameter dashes normalised; refuses empty,
    oversized and malformed prompts and the parameters that would cost more than one grid."""
    tokens = [_parameter(token) for token in prompt.split() if not is_blank(token)]
    prompt = " ".join(tokens)
    if not prompt:
        raise UserFacingError("Tell me what to imagine, e.g. /imagine a paper boat at sunrise")
    if len(prompt) > limits.mj:
        raise _too_long("That prompt is", len(prompt), limits.mj)
    for index, token in enumerate(tokens):
        if not token.startswith("--") or len(token) < 3:
            continue
        value = tokens[index + 1] if index + 1 < len(tokens) else ""
        _check_cost(token, value, limits)
        check = _MJ_CHECKS.get(token[2:].lower())
        if check is None:
            continue  # any other Midjourney parameter passes through as written
        if not re.fullmatch(check[0], value):
            raise UserFacingError(f"Malformed parameter: {check[1]}.")
    if not _has_words(tokens):
        raise UserFacingError("Add some words to the prompt, not only parameters or links.")
    return prompt


def _parameter(token: str) -> str:
    """``token`` with a leading dash lookalike run (``—turbo``, ``–-q``) spelled ``--`` as
    Midjourney reads it, so the checks below see what Midjourney will see."""
    run = _DASH_RUN.match(token)
    if run is None or run.end() == len(token) or not token[run.end()].isalpha():
        return token
    dashes = [ch for ch in run[0] if unicodedata.category(ch) != "Cf"]
    if dashes == ["-"] or not dashes:
        return token  # one plain hyphen is a word ("-ish"), not a parameter
    name = "".join(ch for ch in token[run.end() :] if unicodedata.category(ch) != "Cf")
    return "--" + unicodedata.normalize("NFKC", name)


def _check_cost(token: str, value: str, limits: PromptLimits) -> None:
    """Refuse the parameters that make one request cost more than one grid: repeats, a
    faster mode than the operator pays for, a quality above the default."""
    match = _NAME.match(token[2:].lower())
    if match is None:
        return
    name, glued = match[0], token[2 + match.end() :]
    if glued[:1].isalnum():
        if name not in _QUALITY_FLAGS or not glued[:1].isdigit():
            return  # another parameter that happens to start with these letters
        value = glued
    if name in _REPEAT_FLAGS:
        raise UserFacingError(f"Please remove --{name}: each /imagine makes one grid here.")
    if name in _SPEED_FLAGS and not limits.mj_speed_flags:
        raise UserFacingError(
            f"Please remove --{name}: the speed mode is chosen by the bot's operator."
        )
    if name in _QUALITY_FLAGS and _quality(value) not in _QUALITIES:
        raise UserFacingError(f"--{name} must be .25, .5 or 1 here (1 is the default).")


def _quality(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def modal_prompt(task: Task, text: str, limits: PromptLimits) -> str:
    """The prompt for ``/mj/submit/modal`` from the user's answer (Custom Zoom: a factor
    from 1 to 2 is added to the parent's prompt as ``--zoom``)."""
    text = " ".join(text.split())
    if task.request.get("modal") == "custom_zoom":
        match = _ZOOM.fullmatch(text)
        if match is not None:
            base = _OLD_ZOOM.sub("", str(task.request.get("prompt") or "")).strip()
            text = f"{base} --zoom {match[1]}".strip()
        elif "--zoom" not in text.lower():
            raise UserFacingError(
                "Reply with a zoom factor from 1 to 2 (e.g. 1.5), or a prompt ending in --zoom 1.5."
            )
    return check_imagine(text, limits)


def _is_url(token: str) -> bool:
    return token.startswith(("http://", "https://"))


def _has_words(tokens: list[str]) -> bool:
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token.startswith("--"):
            skip = token[2:].lower() in _MJ_CHECKS
            continue
        if not _is_url(token):
            return True
    return False


def parse_music(text: str, limits: PromptLimits) -> MusicSpec:
    """``/music`` text: leading options, then the description (or lyrics in custom mode)."""
    options, rest = _leading_options(
        text, flags={"instrumental"}, valued={"style", "title"}, aliases={"tags": "style"}
    )
    instrumental = bool(options.get("instrumental"))
    style, title = str(options.get("style", "")), str(options.get("title", ""))
    if style or title:
        spec = MusicSpec(lyrics=rest, style=style, title=title, instrumental=instrumental)
    else:
        spec = MusicSpec(description=" ".join(rest.split()), instrumental=instrumental)
    return check_music(spec, limits)


def check_music(spec: MusicSpec, limits: PromptLimits) -> MusicSpec:
    if spec.custom:
        if is_blank(spec.style):
            raise UserFacingError(
                "Custom songs need a style: /music --style emotional punk --title City Lights, "
                "then the lyrics on the next lines."
            )
        if is_blank(spec.lyrics) and not spec.instrumental:
            raise UserFacingError(
                "Put the lyrics on the lines after the options, or add --instrumental."
            )
        if len(spec.lyrics) > limits.suno_lyrics:
            raise _too_long("The lyrics are", len(spec.lyrics), limits.suno_lyrics)
        if len(spec.style) > limits.suno_style:
            raise _too_long("The style is", len(spec.style), limits.suno_style)
        if len(spec.title) > 200:
            raise _too_long("The title is", len(spec.title), 200)
        return spec
    if is_blank(spec.description):
        raise UserFacingError(
            "Describe the song, e.g. /music an upbeat synth-pop song about late-night coding"
        )
    if len(spec.description) > limits.suno_description:
        raise _too_long("That description is", len(spec.description), limits.suno_description)
    return spec


def parse_video(
    text: str,
    limits: PromptLimits,
    *,
    default_duration: int,
    default_aspect: str,
    image: bool = False,
) -> VideoSpec:
    """``/video`` text: ``--duration`` and ``--aspect`` (or ``--ar``) anywhere, the rest
    is the prompt (which may be empty when an ``image`` is animated)."""
    options: dict[str, str] = {}
    words: list[str] = []
    tokens = text.split()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        match = _OPTION.fullmatch(token)
        if match is None:
            words.append(token)
            index += 1
            continue
        name = {"ar": "aspect", "aspect-ratio": "aspect"}.get(match[1].lower(), match[1].lower())
        if name not in ("duration", "aspect"):
            raise _unknown(match[1], ("--duration 5|10", "--aspect 16:9|9:16|1:1"))
        if index + 1 >= len(tokens):
            raise UserFacingError(f"--{name} needs a value.")
        options[name] = tokens[index + 1]
        index += 2
    duration = default_duration
    if "duration" in options:
        raw = options["duration"].lower().removesuffix("s")
        if not raw.isdigit() or int(raw) not in DURATIONS:
            raise UserFacingError("--duration must be 5 or 10 (seconds).")
        duration = int(raw)
    spec = VideoSpec(" ".join(words), duration, options.get("aspect", default_aspect))
    return check_video(spec, limits, image=image)


def check_video(spec: VideoSpec, limits: PromptLimits, *, image: bool = False) -> VideoSpec:
    """``image``: an image is attached (image-to-video), so the prompt may be empty."""
    if is_blank(spec.prompt) and not image:
        raise UserFacingError("Describe the video, e.g. /video a paper boat drifting at dawn")
    if len(spec.prompt) > limits.kling:
        raise _too_long("That prompt is", len(spec.prompt), limits.kling)
    if spec.duration not in DURATIONS:
        raise UserFacingError("The duration must be 5 or 10 seconds.")
    if spec.aspect_ratio not in ASPECT_RATIOS:
        raise UserFacingError("The aspect ratio must be one of 16:9, 9:16 or 1:1.")
    return spec


def _unknown(name: str, known: tuple[str, ...]) -> UserFacingError:
    return UserFacingError(f"Unknown option --{name}. Options: {', '.join(known)}.")


def _leading_options(
    text: str, *, flags: set[str], valued: set[str], aliases: dict[str, str]
) -> tuple[dict[str, str | bool], str]:
    """Options at the start of ``text`` and what follows them (kept as written)."""
    options: dict[str, str | bool] = {}
    rest = text.strip()
    while rest.startswith("--"):
        match = _OPTION.match(rest)
        if match is None:
            break
        name = aliases.get(match[1].lower(), match[1].lower())
        rest = rest[match.end() :].lstrip(" \t")
        if name in flags:
            options[name] = True
        elif name in valued:
            line = rest.split("\n", 1)[0]
            following = re.search(r"\s--[A-Za-z]", line)
            value = line[: following.start()] if following else line
            if not value.strip():
                raise UserFacingError(f"--{name} needs a value.")
            options[name] = value.strip()
            rest = rest[len(value) :]
        else:
            known = sorted(f"--{n}" for n in flags | valued)
            raise _unknown(match[1], tuple(known))
        rest = rest.lstrip()
    return options, rest.strip()
