"""What a generation task's status message says: status texts, failure sentences, button rows.

Pure functions over :class:`~bot.core.generation.records.Task` rows, shared by every platform;
they only word things. Sending is elsewhere: :mod:`bot.core.generation.progress` edits the
views in while a task runs, :mod:`bot.core.generation.delivery` posts the final one and the
result. Texts are plain (no Markdown): prompts are user input and are shown verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from bot.core.generation.records import Provider, Task, TaskStatus
from bot.core.models import ButtonView, StatusView

__all__ = [
    "BAR_WIDTH",
    "BROKEN",
    "DEAD_PARENT",
    "GONE",
    "MODAL_EXPIRED",
    "button_rows",
    "done_view",
    "expired_message",
    "failed_view",
    "headline",
    "modal_question",
    "progress_bar",
    "progress_view",
    "submitting_view",
]

BAR_WIDTH: Final = 10
PROMPT_EXCERPT: Final = 120
# What the use cases answer when a button, a modal or a submit cannot go ahead.
GONE: Final = "This button is no longer available."
DEAD_PARENT: Final = (
    "That task failed or expired, so its buttons no longer work. Start a new one with /imagine."
)
MODAL_EXPIRED: Final = (
    "That request expired (Midjourney waits about half an hour for an answer). "
    "Press the button again."
)
BROKEN: Final = "Something went wrong while sending this request. Please try again."
_TITLES: Final = {
    (Provider.MIDJOURNEY, "imagine"): "🎨 Imagine",
    (Provider.MIDJOURNEY, "blend"): "🧪 Blend",
    (Provider.MIDJOURNEY, "describe"): "🔎 Describe",
    (Provider.SUNO, "music"): "🎵 Music",
    (Provider.KLING, "text2video"): "🎬 Video",
    (Provider.KLING, "image2video"): "🎬 Video",
}
_NAMES: Final = {Provider.MIDJOURNEY: "Midjourney", Provider.SUNO: "Suno", Provider.KLING: "Kling"}
#: Buttons per row: Discord allows 5, Telegram 8; labelled buttons get fewer so they stay legible.
_ROW: Final = 5
_ROW_LABELLED: Final = 3


def provider_name(provider: Provider) -> str:
    """The name a user knows a provider by ("Midjourney")."""
    return _NAMES[provider]


def excerpt(text: str, limit: int = PROMPT_EXCERPT) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def headline(task: Task) -> str:
    """``🎨 Imagine: a paper boat …`` — what the task is, in one line."""
    request: dict[str, Any] = task.request
    if task.kind == "action":
        label = str(request.get("label") or "Button")
        title = f"🔘 {label}"
    else:
        title = _TITLES.get((task.provider, task.kind), f"✨ {_NAMES[task.provider]}")
    subject = str(
        request.get("prompt")
        or request.get("description")
        or request.get("title")
        or request.get("style")
        or ""
    )
    return f"{title}: {excerpt(subject)}" if subject.strip() else title


def progress_bar(percent: int) -> str:
    """``▰▰▰▰▱▱▱▱▱▱ 45%``."""
    percent = max(0, min(100, percent))
    filled = round(percent * BAR_WIDTH / 100)
    return "▰" * filled + "▱" * (BAR_WIDTH - filled) + f" {percent}%"


def submitting_view(task: Task) -> StatusView:
    return StatusView(f"{headline(task)}\n⏳ Sending it to {_NAMES[task.provider]}…")


def progress_view(
    task: Task, *, status: TaskStatus, progress: int | None, preview_url: str | None
) -> StatusView:
    """The status message while a task is queued or running (``progress`` None: the
    provider reports none)."""
    if status is TaskStatus.RUNNING and progress is None:
        line = "⏳ Working on it…"
    elif status is TaskStatus.RUNNING or (progress or 0) > 0:
        line = progress_bar(progress or 0)
    else:
        line = f"⏳ Queued at {_NAMES[task.provider]}…"
    return StatusView(f"{headline(task)}\n{line}", preview_url=preview_url)


def done_view(task: Task) -> StatusView:
    return StatusView(f"{headline(task)}\n✅ Done", final=True)


def failed_view(task: Task) -> StatusView:
    return StatusView(f"{headline(task)}\n❌ {task.error or failure_default(task)}", final=True)


def failure_default(task: Task) -> str:
    if task.status is TaskStatus.EXPIRED:
        return expired_message(task.provider, None)
    return f"{_NAMES[task.provider]} could not finish this one. Please try again."


def expired_message(provider: Provider, deadline_seconds: float | None) -> str:
    """The sentence for a task past its provider's deadline."""
    waited = "too long" if deadline_seconds is None else f"more than {_minutes(deadline_seconds)}"
    return (
        f"{_NAMES[provider]} took {waited}, so I stopped waiting for this one. "
        "Please try again later."
    )


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def button_rows(buttons: Sequence[ButtonView]) -> tuple[tuple[ButtonView, ...], ...]:
    """Rows in Midjourney's order: at most 5 per row, 3 when they carry words, and a new row
    where worded buttons meet short ones (U1-U4 + 🔄 | V1-V4; Vary… | Zoom… | ⬅️ ➡️ ⬆️ ⬇️)."""
    rows: list[list[ButtonView]] = []
    current: list[ButtonView] = []
    current_wide = False
    for button in buttons:
        wide = len(button.label) > 3
        limit = _ROW_LABELLED if wide or current_wide else _ROW
        if current and (len(current) >= limit or wide != current_wide):
            rows.append(current)
            current = []
        if not current:
            current_wide = wide
        current.append(button)
    if current:
        rows.append(current)
    return tuple(tuple(row) for row in rows)


def modal_question(task: Task) -> str:
    """The question a waiting task asks (answered by replying to it)."""
    if task.request.get("modal") == "custom_zoom":
        return (
            f"{headline(task)}\n🔍 Reply to this message with a zoom factor from 1 to 2 "
            "(e.g. 1.5), or with a whole prompt ending in --zoom 1.5."
        )
    return f"{headline(task)}\n✏️ Reply to this message with the prompt to use."
