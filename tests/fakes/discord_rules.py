"""Discord's limits as the fake enforces them: hand-written checks (content, components, embeds,
modals, autocomplete), optional OpenAPI validation against ../shared/specs/discord-openapi.json,
and a fixed-window rate limiter.

Sources: discord-api-docs (message.mdx "Embed Limits", components/reference.mdx) and
platforms.md §3.1/§4. The 5-action-rows rule and the 6000-char embed total are not in the spec.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.discord_payloads import JSON
from tests.fakes.discord_state import IS_COMPONENTS_V2

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_V2_COMPONENTS = 40
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_CHOICES = 25

DEFAULT_SPEC_PATH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "discord-openapi.json"
)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    path: Path_
    code: str
    message: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "<body>"
        return f"{where}: {self.code}: {self.message}"


class DiscordAPIError(Exception):
    """Raised inside handlers; becomes an error response like Discord's."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        issues: Sequence[Issue] = (),
        source: str = "rule",
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.issues = list(issues)
        self.source = source

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.issues:
            body["errors"] = nest_issues(self.issues)
        return body


def invalid_form(issues: Sequence[Issue], *, source: str = "rule") -> DiscordAPIError:
    return DiscordAPIError(400, 50035, "Invalid Form Body", issues=issues, source=source)


def nest_issues(issues: Sequence[Issue]) -> JSON:
    """[("components",0,"custom_id")] -> {"components":{"0":{"custom_id":{"_errors":[...]}}}}"""
    root: JSON = {}
    for issue in issues:
        node = root
        for part in issue.path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": issue.code, "message": issue.message})
    return root


def _too_long(path: Path_, limit: int) -> Issue:
    return Issue(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(path: Path_, low: int, high: int) -> Issue:
    return Issue(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _check_len(
    out: list[Issue], value: Any, path: Path_, high: int, low: int = 0, *, required: bool = False
) -> None:
    if value is None:
        if required:
            out.append(Issue(path, "BASE_TYPE_REQUIRED", "This field is required"))
        return
    if not isinstance(value, str | list):
        return
    if len(value) > high or len(value) < low:
        out.append(_too_long(path, high) if low == 0 else _bad_length(path, low, high))


def check_embeds(embeds: Any, path: Path_ = ("embeds",)) -> list[Issue]:
    out: list[Issue] = []
    if not isinstance(embeds, list):
        return out
    if len(embeds) > MAX_EMBEDS:
        out.append(_too_long(path, MAX_EMBEDS))
    total = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            continue
        p = (*path, i)
        for key, limit in (("title", 256), ("description", 4096)):
            _check_len(out, embed.get(key), (*p, key), limit)
            total += len(embed.get(key) or "")
        footer, author = embed.get("footer") or {}, embed.get("author") or {}
        _check_len(out, footer.get("text"), (*p, "footer", "text"), 2048)
        _check_len(out, author.get("name"), (*p, "author", "name"), 256)
        total += len(footer.get("text") or "") + len(author.get("name") or "")
        fields = embed.get("fields") or []
        _check_len(out, fields, (*p, "fields"), 25)
        for j, fld in enumerate(fields):
            _check_len(out, fld.get("name"), (*p, "fields", j, "name"), 256, 1, required=True)
            _check_len(out, fld.get("value"), (*p, "fields", j, "value"), 1024, 1, required=True)
            total += len(fld.get("name") or "") + len(fld.get("value") or "")
    if total > MAX_EMBED_TOTAL:
        out.append(
            Issue(
                path,
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
            )
        )
    return out


def _check_component(
    comp: JSON, path: Path_, out: list[Issue], seen: set[str], *, modal: bool
) -> int:
    """Checks one component and its children; returns how many components it counts for."""
    ctype = comp.get("type")
    count = 1
    if (
        "custom_id" in comp
        or ctype in (3, 4, 5, 6, 7, 8)
        or (ctype == 2 and comp.get("style") not in (5, 6))
    ):
        cid = comp.get("custom_id")
        _check_len(out, cid, (*path, "custom_id"), MAX_CUSTOM_ID, 1, required=True)
        if isinstance(cid, str):
            if cid in seen:
                out.append(
                    Issue(
                        (*path, "custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                )
            seen.add(cid)
    if ctype == 1:
        children = comp.get("components") or []
        if not 1 <= len(children) <= MAX_ROW_ITEMS:
            out.append(_bad_length((*path, "components"), 1, MAX_ROW_ITEMS))
        if len(children) > 1 and any(c.get("type") in (3, 4, 5, 6, 7, 8) for c in children):
            out.append(
                Issue(
                    (*path, "components"),
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            )
    elif ctype == 2:
        _check_len(out, comp.get("label"), (*path, "label"), MAX_BUTTON_LABEL)
        if comp.get("style") == 5:
            _check_len(out, comp.get("url"), (*path, "url"), 512, 1, required=True)
        if not comp.get("label") and not comp.get("emoji") and comp.get("style") != 6:
            out.append(
                Issue((*path, "label"), "BUTTON_COMPONENT_INVALID", "A label or emoji is required")
            )
    elif ctype in (3, 5, 6, 7, 8):
        _check_len(out, comp.get("placeholder"), (*path, "placeholder"), 150)
        if ctype == 3:
            opts = comp.get("options") or []
            _check_len(out, opts, (*path, "options"), 25, 1, required=True)
            for j, opt in enumerate(opts):
                for key in ("label", "value", "description"):
                    _check_len(out, opt.get(key), (*path, "options", j, key), 100)
    elif ctype == 4:
        if not modal:
            out.append(
                Issue(path, "COMPONENT_TYPE_INVALID", "Text inputs are only allowed in modals")
            )
        _check_len(out, comp.get("label"), (*path, "label"), 45)
        _check_len(out, comp.get("value"), (*path, "value"), 4000)
        _check_len(out, comp.get("placeholder"), (*path, "placeholder"), 100)
    elif ctype == 18:
        _check_len(out, comp.get("label"), (*path, "label"), 45, 1, required=True)
    children_keys = [
        ("components", comp.get("components")),
        ("component", comp.get("component")),
        ("accessory", comp.get("accessory")),
    ]
    for key, child in children_keys:
        if isinstance(child, list):
            for j, c in enumerate(child):
                if isinstance(c, dict):
                    count += _check_component(c, (*path, key, j), out, seen, modal=modal)
        elif isinstance(child, dict):
            count += _check_component(child, (*path, key), out, seen, modal=modal)
    return count


def check_components(
    components: Any, *, flags: int = 0, modal: bool = False, path: Path_ = ("components",)
) -> list[Issue]:
    out: list[Issue] = []
    if not isinstance(components, list):
        return out
    v2 = bool(flags & IS_COMPONENTS_V2)
    if not v2 and not modal:
        if len(components) > MAX_ROWS:
            out.append(_too_long(path, MAX_ROWS))
        for i, row in enumerate(components):
            if isinstance(row, dict) and row.get("type") != 1:
                out.append(
                    Issue(
                        (*path, i),
                        "COMPONENT_TYPE_INVALID",
                        "Legacy messages only allow action rows at the top level",
                    )
                )
    if modal and len(components) > MAX_ROWS:
        out.append(_too_long(path, MAX_ROWS))
    seen: set[str] = set()
    total = sum(
        _check_component(c, (*path, i), out, seen, modal=modal)
        for i, c in enumerate(components)
        if isinstance(c, dict)
    )
    if v2 and total > MAX_V2_COMPONENTS:
        out.append(_too_long(path, MAX_V2_COMPONENTS))
    return out


def check_allowed_mentions(am: Any, path: Path_ = ("allowed_mentions",)) -> list[Issue]:
    out: list[Issue] = []
    if not isinstance(am, dict):
        return out
    parse = am.get("parse") or []
    for i, item in enumerate(parse):
        if item not in ("roles", "users", "everyone"):
            out.append(
                Issue(
                    (*path, "parse", i),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of ('roles', 'users', 'everyone').",
                )
            )
    for key in ("users", "roles"):
        if am.get(key) and key in parse:
            out.append(
                Issue(
                    (*path, key),
                    "MENTION_LIST_CONFLICT",
                    f"parse:[{key}] and {key}:[...] are mutually exclusive",
                )
            )
        _check_len(out, am.get(key), (*path, key), 100)
    return out


def check_message_body(body: JSON, path: Path_ = ()) -> list[Issue]:
    """Hand-checked limits of a message create/edit body (or interaction callback data)."""
    out: list[Issue] = []
    _check_len(out, body.get("content"), (*path, "content"), MAX_CONTENT)
    out += check_embeds(body.get("embeds"), (*path, "embeds"))
    out += check_components(
        body.get("components"), flags=int(body.get("flags") or 0), path=(*path, "components")
    )
    out += check_allowed_mentions(body.get("allowed_mentions"), (*path, "allowed_mentions"))
    return out


def is_empty_message(body: JSON, *, files: int = 0) -> bool:
    keep = ("embeds", "components", "sticker_ids", "poll", "attachments")
    return not body.get("content") and not files and not any(body.get(k) for k in keep)


def check_modal(data: JSON) -> list[Issue]:
    out: list[Issue] = []
    _check_len(out, data.get("custom_id"), ("data", "custom_id"), MAX_CUSTOM_ID, 1, required=True)
    _check_len(out, data.get("title"), ("data", "title"), 45, 1, required=True)
    comps = data.get("components")
    _check_len(out, comps, ("data", "components"), MAX_ROWS, 1, required=True)
    out += check_components(comps, modal=True, path=("data", "components"))
    return out


def check_choices(data: JSON) -> list[Issue]:
    out: list[Issue] = []
    choices = data.get("choices") or []
    _check_len(out, choices, ("data", "choices"), MAX_CHOICES)
    for i, choice in enumerate(choices):
        _check_len(out, choice.get("name"), ("data", "choices", i, "name"), 100, 1, required=True)
        if isinstance(choice.get("value"), str):
            _check_len(out, choice["value"], ("data", "choices", i, "value"), 100)
    return out


# --- OpenAPI validation -------------------------------------------------------------------

SPEC_OPERATIONS: dict[str, tuple[str, str]] = {
    "create_message": ("/channels/{channel_id}/messages", "post"),
    "update_message": ("/channels/{channel_id}/messages/{message_id}", "patch"),
    "execute_webhook": ("/webhooks/{webhook_id}/{webhook_token}", "post"),
    "update_webhook_message": (
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        "patch",
    ),
    "update_original_webhook_message": (
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        "patch",
    ),
    "create_interaction_response": (
        "/interactions/{interaction_id}/{interaction_token}/callback",
        "post",
    ),
}


class SpecValidator:
    """Validates request bodies against the OpenAPI 3.1 spec (JSON Schema 2020-12)."""

    def __init__(self, spec: JSON) -> None:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry: Any = Registry().with_resource("urn:discord", resource)
        self._validators: dict[str, Any] = {}

    def _validator(self, operation: str) -> Any:
        if operation not in self._validators:
            from jsonschema import Draft202012Validator

            path, method = SPEC_OPERATIONS[operation]
            pointer = "/paths/" + path.replace("~", "~0").replace("/", "~1")
            pointer += f"/{method}/requestBody/content/application~1json/schema"
            self._validators[operation] = Draft202012Validator(
                {"$ref": f"urn:discord#{pointer}"}, registry=self._registry
            )
        return self._validators[operation]

    def validate(self, operation: str, body: Any) -> list[Issue]:
        from jsonschema.exceptions import best_match

        errors = list(self._validator(operation).iter_errors(snowflakes_as_strings(body)))
        if not errors:
            return []
        best = best_match(errors)
        while best.context:  # descend into anyOf/oneOf to the most specific failure
            best = best_match(best.context)
        path = tuple(best.absolute_path)
        return [Issue(path, "SPEC_VIOLATION", f"{operation}: {best.message[:300]}")]


_ID_LISTS = frozenset({"users", "roles", "sticker_ids", "sku_ids", "applied_tags"})


def snowflakes_as_strings(value: Any, key: str = "") -> Any:
    """Discord accepts snowflakes as JSON numbers (discord.py sends ints, and 0, 1... as ids of
    new attachments); the spec types them as strings. Convert before validating."""
    if isinstance(value, dict):
        return {k: snowflakes_as_strings(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [snowflakes_as_strings(v, key) for v in value]
    is_id = key == "id" or key.endswith("_id") or key in _ID_LISTS
    if is_id and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


@functools.cache
def load_spec_validator(path: str) -> SpecValidator | None:
    """Loaded once per process and path; None when the spec file is absent."""
    file = Path(path)
    if not file.is_file():
        return None
    return SpecValidator(json.loads(file.read_text(encoding="utf-8")))


# --- rate limiting ------------------------------------------------------------------------


@dataclass
class BucketState:
    limit: int
    remaining: int
    reset_after: float
    allowed: bool


class FixedWindowLimiter:
    """`limit` requests per `per` seconds per key, windows starting at the first request."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.per = per
        self._clock = clock
        self._windows: dict[Any, tuple[float, int]] = {}

    def hit(self, key: Any) -> BucketState:
        now = self._clock()
        start, used = self._windows.get(key, (now, 0))
        if now >= start + self.per:
            start, used = now, 0
        reset_after = max(start + self.per - now, 0.0)
        if used >= self.limit:
            self._windows[key] = (start, used)
            return BucketState(self.limit, 0, reset_after, allowed=False)
        used += 1
        self._windows[key] = (start, used)
        return BucketState(self.limit, self.limit - used, reset_after, allowed=True)
