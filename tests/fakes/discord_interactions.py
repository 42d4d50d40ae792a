"""Interaction routes of FakeDiscord: the initial callback and the interaction webhook
(followups, @original). Rules from discord-api-docs receiving-and-responding.mdx: ack within
3 s of the dispatch (else 10062), one ack only (40060), token valid 15 min (else 50027)."""

from __future__ import annotations

from tests.fakes.discord_http import (
    SETTABLE_FLAGS,
    WEBHOOK_BUCKET,
    Ctx,
    MessageWriter,
    Reply,
    as_dict,
)
from tests.fakes.discord_payloads import JSON
from tests.fakes.discord_rules import (
    DiscordAPIError,
    FixedWindowLimiter,
    Issue,
    check_choices,
    check_message_body,
    check_modal,
    invalid_form,
)
from tests.fakes.discord_state import EPHEMERAL, LOADING, FakeInteraction, FakeMessage

# Callback types allowed per interaction type: 4 message, 5 deferred message, 6 deferred
# update, 7 update message, 8 autocomplete result, 9 modal.
CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}
_TRUE = ("1", "true", "True")


class InteractionRoutes(MessageWriter):
    ack_deadline: float
    token_ttl: float
    webhook_limiter: FixedWindowLimiter | None

    def _unknown(self, code: int, message: str, status: int = 404) -> DiscordAPIError:
        return DiscordAPIError(status, code, message, source="interaction")

    async def callback(self, ctx: Ctx) -> Reply:
        """POST /interactions/{id}/{token}/callback (discord.py adds ?with_response=1)."""
        world = self.world
        inter = world.interactions.get(int(ctx.params["interaction_id"]))
        if inter is None or inter.token != ctx.params["token"]:
            raise self._unknown(10062, "Unknown interaction")
        if inter.acked:
            raise self._unknown(40060, "Interaction has already been acknowledged.", 400)
        now = world.now()
        if inter.dispatched_at is None or now - inter.dispatched_at > self.ack_deadline:
            raise self._unknown(10062, "Unknown interaction")
        body = as_dict(ctx.body)
        cb_type, data = body.get("type"), as_dict(body.get("data"))
        allowed = CALLBACKS.get(inter.type, set())
        if inter.source_message_id is None:
            allowed = allowed - {6, 7}
        if cb_type not in allowed:
            text = f"Callback type {cb_type} is not valid for interaction type {inter.type}"
            raise invalid_form([Issue(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", text)])
        issues: list[Issue] = []
        if cb_type == 4:
            issues = self.new_message_issues(data, ctx.files, ("data",))
        elif cb_type == 7:
            issues = check_message_body(data, ("data",))
        elif cb_type == 9:
            issues = check_modal(data)
        elif cb_type == 8:
            issues = check_choices(data)
        self.validate("create_interaction_response", body, issues)

        inter.ack_type, inter.acked_at = cb_type, now
        inter.responses.append(body)
        msg = self._apply_callback(inter, cb_type, data, ctx)
        if ctx.query.get("with_response") not in _TRUE:
            return Reply(204)
        info: JSON = {
            "id": str(inter.id),
            "type": inter.type,
            "response_message_loading": cb_type == 5,
            "response_message_ephemeral": bool(msg and msg.ephemeral),
        }
        result: JSON = {"interaction": info}
        if msg is not None and cb_type in (4, 5, 7):
            info["response_message_id"] = str(msg.id)
            result["resource"] = {"type": cb_type, "message": msg.payload()}
        return Reply(200, result)

    def _apply_callback(
        self, inter: FakeInteraction, cb_type: int, data: JSON, ctx: Ctx
    ) -> FakeMessage | None:
        msg: FakeMessage | None = None
        if cb_type == 4:
            msg = self.new_bot_message(inter.channel_id, data, ctx.files, interaction=inter)
        elif cb_type == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            msg = self.new_bot_message(inter.channel_id, {}, [], interaction=inter, flags=flags)
        elif cb_type in (6, 7):
            msg = self.world.messages.get(inter.source_message_id or 0)
            if msg is not None and cb_type == 7:
                self.apply_edit(msg, data, ctx.files)
        elif cb_type == 8:
            inter.choices = list(data.get("choices") or [])
        elif cb_type == 9:
            inter.modal = data
        if msg is not None:
            inter.original_message_id = msg.id
        return msg

    def _webhook_interaction(self, ctx: Ctx) -> FakeInteraction:
        inter = self.world.by_token.get(ctx.params["token"])
        if int(ctx.params["app_id"]) != self.world.app_id or inter is None:
            raise self._unknown(10015, "Unknown Webhook")
        age = self.world.now() - (inter.dispatched_at or self.world.now())
        if age > self.token_ttl:
            raise self._unknown(50027, "Invalid Webhook Token", 401)
        if not inter.acked:
            raise self._unknown(10015, "Unknown Webhook")
        return inter

    async def followup(self, ctx: Ctx) -> Reply:
        """POST /webhooks/{app_id}/{token}[?wait=1]."""
        inter = self._webhook_interaction(ctx)
        self.limit(ctx, self.webhook_limiter, ("webhook", inter.token), WEBHOOK_BUCKET)
        body = as_dict(ctx.body)
        self.validate("execute_webhook", body, self.new_message_issues(body, ctx.files))
        original = self.world.messages.get(inter.original_message_id or 0)
        if inter.ack_type == 5 and original is not None and original.loading:
            # The first followup after a "thinking" defer replaces the loading message.
            self.apply_edit(original, body, ctx.files)
            msg = original
        else:
            flags = int(body.get("flags") or 0) & SETTABLE_FLAGS
            msg = self.new_bot_message(
                inter.channel_id, body, ctx.files, interaction=inter, flags=flags
            )
            inter.followup_ids.append(msg.id)
        if ctx.query.get("wait") in _TRUE:
            return Reply(200, msg.payload())
        return Reply(204)

    async def webhook_message(self, ctx: Ctx) -> Reply:
        """GET/PATCH/DELETE /webhooks/{app_id}/{token}/messages/{id|@original}."""
        inter = self._webhook_interaction(ctx)
        ref = ctx.params["message"]
        mid = inter.original_message_id if ref == "@original" else int(ref)
        msg = self.world.messages.get(mid or 0)
        owned = mid == inter.original_message_id or mid in inter.followup_ids
        if msg is None or msg.deleted or not owned:
            raise DiscordAPIError(404, 10008, "Unknown Message", source="lookup")
        if ctx.method == "GET":
            return Reply(body=msg.payload())
        if ctx.method == "DELETE":
            msg.deleted = True
            return Reply(204)
        self.limit(ctx, self.webhook_limiter, ("webhook", inter.token), WEBHOOK_BUCKET)
        body = as_dict(ctx.body)
        op = "update_original_webhook_message" if ref == "@original" else "update_webhook_message"
        self.check_edit(msg, body, ctx.files, op)
        self.apply_edit(msg, body, ctx.files)
        return Reply(body=msg.payload())
