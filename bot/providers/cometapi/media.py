"""Image bytes <-> the encodings the APIs want.

Chat image parts and Midjourney want ``data:image/png;base64,...`` URIs; Kling
wants raw base64 without the ``data:`` prefix.
"""

from __future__ import annotations

import base64

__all__ = ["data_uri", "image_mime_type", "raw_base64"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_mime_type(data: bytes, default: str = "image/png") -> str:
    """Guess an image's MIME type from its first bytes."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return default


def data_uri(data: bytes | str, mime_type: str | None = None) -> str:
    """Encode image bytes as a data URI; a string (URL or data URI) passes through."""
    if isinstance(data, str):
        return data
    mime = mime_type or image_mime_type(data)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def raw_base64(image: bytes | str) -> str:
    """Bytes -> base64; a data URI loses its ``data:...;base64,`` prefix; a URL passes."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode("ascii")
    if image.startswith("data:") and "," in image:
        return image.split(",", 1)[1]
    return image
