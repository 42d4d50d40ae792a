"""What a generation asks for: who asked (:class:`Origin`) and one typed request per kind.

:class:`~bot.core.generation.service.GenerationService` builds a request from checked input,
stores :meth:`row` as the task row's ``request`` (the JSON that status views and modal
prompts read back later) and hands the request itself to
:meth:`TaskBackend.submit <bot.core.ports.TaskBackend.submit>`, whose adapter matches on its
type. A renamed field is then a type error, not a failure on the paid-submit path.

Images travel inside the request (they are never stored: the row counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bot.core.generation.prompts import MusicSpec, VideoSpec
from bot.core.generation.records import Provider
from bot.core.models import ConversationKey, ImageInput, UserId

__all__ = [
    "ActionRequest",
    "BlendRequest",
    "DescribeRequest",
    "GenerationRequest",
    "ImagineRequest",
    "ModalRequest",
    "MusicRequest",
    "NewTaskRequest",
    "Origin",
    "VideoRequest",
]


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked, in which conversation, and which message the answers reply to."""

    key: ConversationKey
    user_id: UserId
    reply_to: str | None = None
    #: Which process posts the results (see ``NewTask.route``); the platform sets it.
    route: str | None = None


@dataclass(frozen=True, slots=True)
class ImagineRequest:
    """Midjourney text (+ reference images) -> a grid."""

    provider: ClassVar[Provider] = Provider.MIDJOURNEY
    kind: ClassVar[str] = "imagine"

    prompt: str
    images: tuple[ImageInput, ...] = ()

    def row(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "images": len(self.images)}


@dataclass(frozen=True, slots=True)
class BlendRequest:
    """Midjourney: 2 to 5 images -> one grid."""

    provider: ClassVar[Provider] = Provider.MIDJOURNEY
    kind: ClassVar[str] = "blend"

    images: tuple[ImageInput, ...]
    dimensions: str = "SQUARE"

    def row(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions, "images": len(self.images)}


@dataclass(frozen=True, slots=True)
class DescribeRequest:
    """Midjourney: one image, or one image link -> four prompts."""

    provider: ClassVar[Provider] = Provider.MIDJOURNEY
    kind: ClassVar[str] = "describe"

    image: ImageInput | None = None
    link: str | None = None

    def row(self) -> dict[str, Any]:
        return {"link": self.link} if self.link else {"images": 1}


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A Midjourney button pressed on the finished task ``parent`` (its upstream id).

    ``label`` and ``prompt`` are for the status views; ``modal`` says what to ask the user
    should Midjourney answer with a modal (a zoom factor, or a whole prompt).
    """

    provider: ClassVar[Provider] = Provider.MIDJOURNEY
    kind: ClassVar[str] = "action"

    parent: str
    custom_id: str
    label: str
    prompt: str
    modal: Literal["custom_zoom", "prompt"]

    def row(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "custom_id": self.custom_id,
            "label": self.label,
            "prompt": self.prompt,
            "modal": self.modal,
        }


@dataclass(frozen=True, slots=True)
class ModalRequest:
    """The user's answer to a Midjourney modal; it completes the waiting task ``task_id``
    (its upstream id) and writes no row of its own."""

    provider: ClassVar[Provider] = Provider.MIDJOURNEY
    kind: ClassVar[str] = "modal"

    task_id: str
    prompt: str


@dataclass(frozen=True, slots=True)
class MusicRequest:
    """Suno: two clips, in inspiration mode or custom mode (see :class:`MusicSpec`)."""

    provider: ClassVar[Provider] = Provider.SUNO
    kind: ClassVar[str] = "music"

    spec: MusicSpec
    model: str

    def row(self) -> dict[str, Any]:
        spec = self.spec
        row: dict[str, Any] = {"instrumental": spec.instrumental, "mv": self.model}
        if spec.custom:
            row.update(lyrics=spec.lyrics, style=spec.style, title=spec.title)
        else:
            row["description"] = spec.description
        return row


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """Kling text-to-video, or image-to-video with an ``image``."""

    provider: ClassVar[Provider] = Provider.KLING

    spec: VideoSpec
    model: str
    image: ImageInput | None = None

    @property
    def kind(self) -> str:
        """The Kling route, which is also needed to query the task later."""
        return "text2video" if self.image is None else "image2video"

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "prompt": self.spec.prompt,
            "duration": self.spec.duration,
            "model": self.model,
        }
        if self.image is None:
            row["aspect_ratio"] = self.spec.aspect_ratio
        return row


NewTaskRequest = (
    ImagineRequest | BlendRequest | DescribeRequest | ActionRequest | MusicRequest | VideoRequest
)
"""A request that starts a task (and writes its row)."""
GenerationRequest = NewTaskRequest | ModalRequest
"""Every paid submit :class:`~bot.core.ports.TaskBackend` takes."""
