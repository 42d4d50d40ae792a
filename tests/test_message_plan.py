"""MessagePlan without I/O: which message shows what as an answer grows past one message."""

from __future__ import annotations

from bot.core.chat.markdown import split_markdown
from bot.core.chat.message_plan import MessagePlan, PlannedMessage


def deliver(plan: MessagePlan) -> list[str]:
    """Post or edit every pending message, as the reply's flusher would; the payloads."""
    sent: list[str] = []
    while (message := plan.next_pending()) is not None:
        assert message.target is not None
        message.id = message.id or f"m{len(plan.messages)}"
        message.sent = message.target
        sent.append(message.target)
    return sent


def test_an_answer_past_the_limit_seals_messages_at_the_final_split() -> None:
    plan = MessagePlan(40, len, empty_text="(none)")
    text = "First paragraph here.\n\nSecond paragraph, a bit longer.\n\nThird."
    for at in range(0, len(text), 3):
        plan.feed(text[at : at + 3])
        deliver(plan)
    plan.finish(None)
    deliver(plan)
    assert [m.sent for m in plan.shown()] == split_markdown(text, 40, len)
    assert plan.settled and not plan.has_work()
    assert all(m.sealed for m in plan.messages[:-1])


def test_the_first_message_and_sealed_edits_are_urgent_growing_edits_are_not() -> None:
    plan = MessagePlan(20, len, empty_text="(none)")
    assert plan.urgent  # nothing posted yet
    plan.feed("Hello")
    deliver(plan)
    plan.feed(" world")
    assert not plan.urgent
    plan.feed(", and this sentence no longer fits.")
    plan.next_pending()  # cuts: the first message's last edit is now due
    assert plan.urgent


def test_an_empty_answer_shows_the_note_or_the_empty_text() -> None:
    plan = MessagePlan(100, len, empty_text="(none)")
    plan.feed("  ")
    plan.finish(None)
    assert deliver(plan) == ["(none)"]
    noted = MessagePlan(100, len, empty_text="(none)")
    noted.finish("⚠️ upstream error")
    assert deliver(noted) == ["⚠️ upstream error"]


def test_a_vanished_growing_message_is_posted_again_a_sealed_one_is_not() -> None:
    plan = MessagePlan(100, len, empty_text="(none)")
    plan.feed("Hello")
    deliver(plan)
    growing = plan.messages[-1]
    assert plan.lost(growing)
    assert growing.id is None and plan.next_pending() is growing
    sealed = PlannedMessage(id="old", sent="x", target="y", sealed=True)
    plan.messages.insert(0, sealed)
    assert not plan.lost(sealed)
    assert sealed.gone and plan.next_pending() is growing


def test_cut_short_ends_in_the_last_posted_message_with_the_note() -> None:
    """Shutdown with messages not posted yet: no waiting for them, the note follows the last
    message shown (a sealed one keeps its text; the note gets a message of its own)."""
    plan = MessagePlan(40, len, empty_text="(none)")
    text = "First paragraph here.\n\nSecond paragraph, a bit longer.\n\nThird one, also."
    plan.feed(text[:30])
    first = plan.next_pending()
    assert first is not None
    first.id, first.sent = "m1", first.target  # one message posted
    plan.feed(text[30:])
    plan.finish(None)  # the whole answer is there: three messages, two not posted yet
    assert not plan.all_posted
    plan.cut_short("⚠️ interrupted")
    # the first message's last edit (its final, sealed text), then the note
    assert deliver(plan) == [first.target, "⚠️ interrupted"]
    assert [(m.sent or "").strip() for m in plan.shown()] == [
        "First paragraph here.",
        "⚠️ interrupted",
    ]
    plan.feed(" more")  # nothing changes after the cut
    assert not plan.has_work()


def test_cut_short_in_a_growing_message_appends_the_note() -> None:
    plan = MessagePlan(100, len, empty_text="(none)")
    plan.feed("Half a sen")
    deliver(plan)
    plan.feed("tence")
    plan.cut_short("⚠️ interrupted")
    assert deliver(plan) == ["Half a sentence\n\n⚠️ interrupted"]
    in_flight = MessagePlan(100, len, empty_text="(none)")
    in_flight.feed("Being posted")
    message = in_flight.next_pending()  # its send is on the wire: it counts as shown
    in_flight.cut_short("⚠️ interrupted", in_flight=message)
    assert deliver(in_flight) == ["Being posted\n\n⚠️ interrupted"]
