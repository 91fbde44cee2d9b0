"""The write tools, called directly with a real backend and state store: side effects checked in the
database, and every refusal leaves every table as it was."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from deskgate.server.errors import DomainError, NotFound
from deskgate.server.manifest.sources import served_catalogue
from deskgate.server.policy.model import load_policy
from deskgate.tools import write
from deskgate.tools.backend.seed import DEMO
from deskgate.tools.catalogue import build_catalogue
from deskgate.tools.models import AddressInput, WriteInput

pytestmark = pytest.mark.anyio

NEW_ADDRESS = AddressInput(line1="Torstrasse 1", line2="Hinterhaus", city="Berlin", postcode="10119", country="DE")


async def refused(call: Any, code: str, snapshot: Any) -> None:
    """Await a call that must fail with a domain error `code` and change nothing."""
    before = snapshot()
    with pytest.raises(DomainError) as error:
        await call
    assert error.value.code == code
    assert snapshot() == before


# --- verify_identity ------------------------------------------------------------------------

async def test_a_correct_secret_verifies_the_customer_for_this_session_only(make_ctx, state) -> None:
    """Success marks (session, customer) verified in the state store, and no other session."""
    ctx = make_ctx()
    result = await write.verify_identity(ctx, write.VerifyIdentityInput(
        customer_id=DEMO.customer_id, method="card_last4", value=DEMO.card_last4))
    assert (result.verified, result.method) == (True, "card_last4")
    assert await state.verifications.is_verified(ctx.session.sid, DEMO.customer_id)
    assert not await state.verifications.is_verified("another-session", DEMO.customer_id)


async def test_a_wrong_secret_answers_only_verified_false(make_ctx, state) -> None:
    """Failure marks nothing and the answer carries no hint about what was wrong."""
    ctx = make_ctx()
    result = await write.verify_identity(ctx, write.VerifyIdentityInput(
        customer_id=DEMO.customer_id, method="postcode", value="99999"))
    assert result.model_dump() == {"customer_id": DEMO.customer_id, "verified": False, "method": "postcode"}
    assert not await state.verifications.is_verified(ctx.session.sid, DEMO.customer_id)


@pytest.mark.parametrize("arguments", [
    {"customer_id": "C-1", "method": "card_last4", "value": "42"},
    {"customer_id": "C-1", "method": "card_last4", "value": "abcd"},
    {"customer_id": "C-1", "method": "card_last4", "value": "4111111111111111"},
    {"customer_id": "C-1", "method": "dob", "value": "1986-04-17"},
    {"customer_id": "C-1", "method": "postcode", "value": "10115'; --"},
])
def test_verification_input_must_have_the_shape_of_its_method(arguments: dict[str, Any]) -> None:
    """Four digits for a card, a plausible postcode, and only the two known methods."""
    with pytest.raises(ValidationError):
        write.VerifyIdentityInput.model_validate(arguments)


# --- update_email_preferences and undo ------------------------------------------------------

async def test_preferences_change_only_what_is_given_and_undo_restores_them(make_ctx, scalar) -> None:
    """Only marketing changes; the action is undoable until now + the policy's window; undo restores."""
    ctx = make_ctx(undo_windows={"update_email_preferences": 600})
    changed = await write.update_email_preferences(ctx, write.UpdatePreferencesInput(
        customer_id=DEMO.customer_id, marketing=True))
    assert changed.email_preferences.model_dump() == {"marketing": True, "product_updates": True,
                                                      "newsletter": False}
    assert scalar("SELECT pref_marketing FROM customers WHERE id = ?", DEMO.customer_id) == 1
    assert scalar("SELECT reversible_until FROM actions WHERE id = ?", changed.action_id) == ctx.now + 600
    undone = await write.undo_action(ctx, write.UndoInput(action_id=changed.action_id,
                                                          customer_id=DEMO.customer_id))
    assert undone.tool == "update_email_preferences"
    assert scalar("SELECT pref_marketing FROM customers WHERE id = ?", DEMO.customer_id) == 0


def test_a_preferences_change_must_set_something() -> None:
    """A call that sets no preference is refused by its input model."""
    with pytest.raises(ValidationError):
        write.UpdatePreferencesInput(customer_id=DEMO.customer_id)


# --- change_shipping_address ----------------------------------------------------------------

async def test_a_pending_order_gets_the_new_address_and_undo_puts_the_old_one_back(make_ctx, scalar) -> None:
    """The order row changes; undo within the policy's window restores it."""
    ctx = make_ctx(undo_windows={"change_shipping_address": 3600})
    changed = await write.change_shipping_address(ctx, write.ChangeAddressInput(
        order_id=DEMO.pending_order, address=NEW_ADDRESS))
    assert changed.reversible_until.timestamp() == ctx.now + 3600
    assert scalar("SELECT ship_line1 FROM orders WHERE id = ?", DEMO.pending_order) == "Torstrasse 1"
    await write.undo_action(make_ctx(now=ctx.now + 60), write.UndoInput(action_id=changed.action_id,
                                                                        customer_id=DEMO.customer_id))
    assert scalar("SELECT ship_line1 FROM orders WHERE id = ?", DEMO.pending_order) == "Invalidenstrasse 12"


async def test_a_shipped_order_keeps_its_address(make_ctx, snapshot) -> None:
    """Address change after shipment is refused, and nothing is recorded."""
    call = write.change_shipping_address(make_ctx(), write.ChangeAddressInput(order_id=DEMO.shipped_order,
                                                                              address=NEW_ADDRESS))
    await refused(call, "already_shipped", snapshot)


@pytest.mark.parametrize("address", [
    {"line1": "", "city": "Berlin", "postcode": "10119", "country": "DE"},
    {"line1": "x" * 101, "city": "Berlin", "postcode": "10119", "country": "DE"},
    {"line1": "Torstrasse 1", "city": "Berlin", "postcode": "10119", "country": "Germany"},
    {"line1": "Torstrasse 1", "city": "Berlin", "postcode": "<script>", "country": "DE"},
    {"line1": "Torstrasse 1", "city": "Berlin", "postcode": "10119", "country": "DE", "floor": 3},
])
def test_addresses_are_validated_field_by_field(address: dict[str, Any]) -> None:
    """Empty or overlong lines, a country that is not ISO alpha-2, a junk postcode, an unknown field."""
    with pytest.raises(ValidationError):
        write.ChangeAddressInput.model_validate({"order_id": DEMO.pending_order, "address": address})


async def test_undo_is_refused_after_the_window_after_shipment_and_after_a_later_change(
        make_ctx, backend, scalar, snapshot) -> None:
    """Each reason to refuse an undo has its own code, and the refusal changes nothing."""
    ctx = make_ctx(undo_windows={"change_shipping_address": 60})
    first = await write.change_shipping_address(ctx, write.ChangeAddressInput(order_id=DEMO.pending_order,
                                                                              address=NEW_ADDRESS))
    undo_first = write.UndoInput(action_id=first.action_id, customer_id=DEMO.customer_id)
    await refused(write.undo_action(make_ctx(now=ctx.now + 61), undo_first), "undo_window_expired", snapshot)
    second = await write.change_shipping_address(ctx, write.ChangeAddressInput(
        order_id=DEMO.pending_order, address=NEW_ADDRESS.model_copy(update={"line1": "Torstrasse 2"})))
    await refused(write.undo_action(ctx, undo_first), "changed_since", snapshot)
    backend.db.write_sync(lambda tx: tx.execute("UPDATE orders SET status = 'shipped' WHERE id = ?",
                                                (DEMO.pending_order,)))
    undo_second = write.UndoInput(action_id=second.action_id, customer_id=DEMO.customer_id)
    await refused(write.undo_action(ctx, undo_second), "already_shipped", snapshot)
    assert scalar("SELECT COUNT(*) FROM actions WHERE undone_at IS NOT NULL") == 0


async def test_an_action_is_undone_once(make_ctx, snapshot) -> None:
    """The second undo of the same action is refused."""
    ctx = make_ctx()
    changed = await write.update_email_preferences(ctx, write.UpdatePreferencesInput(
        customer_id=DEMO.customer_id, newsletter=True))
    undo = write.UndoInput(action_id=changed.action_id, customer_id=DEMO.customer_id)
    await write.undo_action(ctx, undo)
    await refused(write.undo_action(ctx, undo), "already_undone", snapshot)


def test_undo_names_exactly_one_owner() -> None:
    """Neither or both of customer_id and account_id is refused by the input model."""
    for owners in ({}, {"customer_id": "C-1", "account_id": "A-1"}):
        with pytest.raises(ValidationError):
            write.UndoInput.model_validate({"action_id": "ACT-1", **owners})


# --- initiate_password_reset ----------------------------------------------------------------

async def test_a_password_reset_goes_to_the_outbox_and_the_link_goes_nowhere_else(make_ctx, scalar) -> None:
    """One outbox email to the address on file, holding only a SHA-256 of the link token."""
    ctx = make_ctx()
    sent = await write.initiate_password_reset(ctx, write.PasswordResetInput(customer_id=DEMO.customer_id))
    assert set(sent.model_dump()) == {"customer_id", "outbox_id", "expires_at"}
    assert sent.expires_at.timestamp() == ctx.now + write.PASSWORD_RESET_TTL
    assert scalar("SELECT to_address FROM outbox WHERE id = ?", sent.outbox_id) == DEMO.customer_email
    assert scalar("SELECT kind FROM outbox WHERE id = ?", sent.outbox_id) == "password_reset"
    digest = scalar("SELECT token_sha256 FROM outbox WHERE id = ?", sent.outbox_id)
    assert len(digest) == 64 and int(digest, 16) >= 0
    body = scalar("SELECT body FROM outbox WHERE id = ?", sent.outbox_id)
    assert "http" not in body and "token" not in body


async def test_a_password_reset_for_an_unknown_customer_sends_nothing(make_ctx, snapshot) -> None:
    """Unknown customer: NotFound, and the outbox is unchanged."""
    before = snapshot()
    with pytest.raises(NotFound):
        await write.initiate_password_reset(make_ctx(), write.PasswordResetInput(customer_id="C-999999"))
    assert snapshot() == before


# --- issue_refund ---------------------------------------------------------------------------

async def test_a_refund_is_recorded_and_lowers_what_remains_refundable(make_ctx, scalar) -> None:
    """The refund row exists, the order's refunded total grows, the answer says what is left."""
    ctx = make_ctx()
    refund = await write.issue_refund(ctx, write.RefundInput(order_id=DEMO.delivered_order, amount=Decimal("42.10"),
                                                             reason_code="damaged_item"))
    assert (refund.amount, refund.refunded_total, refund.refundable_remaining) == (
        Decimal("42.10"), Decimal("42.10"), Decimal("87.80"))
    assert scalar("SELECT amount_minor FROM refunds WHERE id = ?", refund.refund_id) == 4210
    assert scalar("SELECT actor FROM refunds WHERE id = ?", refund.refund_id) == "agent-7"
    assert scalar("SELECT refunded_minor FROM orders WHERE id = ?", DEMO.delivered_order) == 4210


async def test_the_refund_preview_says_what_will_happen(make_ctx) -> None:
    """Amount, currency, order and the card's last four, and that it is final."""
    preview = await write.preview_refund(make_ctx(), write.RefundInput(
        order_id=DEMO.delivered_order, amount=Decimal("42.1"), reason_code="damaged_item"))
    assert preview == (f"Refund 42.10 EUR on order {DEMO.delivered_order} to visa card ending {DEMO.card_last4}; "
                       "refunds are final")


async def test_a_refund_above_the_remainder_is_refused_by_preview_and_handler(make_ctx, snapshot) -> None:
    """No confirmation for an impossible refund, and no partial refund either."""
    args = write.RefundInput(order_id=DEMO.delivered_order, amount=Decimal("129.91"), reason_code="damaged_item")
    await refused(write.preview_refund(make_ctx(), args), "amount_above_refundable", snapshot)
    await refused(write.issue_refund(make_ctx(), args), "amount_above_refundable", snapshot)


@pytest.mark.parametrize("amount", [0, -5, "10.001", "0.0001e1", "1000000.01", "NaN", "-Infinity", "ten"])
def test_refund_amounts_are_positive_with_at_most_two_decimals(amount: Any) -> None:
    """Zero, negative, sub-cent (however written), above the cap, NaN, infinities and words are refused."""
    with pytest.raises(ValidationError):
        write.RefundInput.model_validate({"order_id": "O-1", "amount": amount, "reason_code": "damaged_item"})


@pytest.mark.parametrize("reason_code", ["", "Damaged", "damaged item", "x" * 41, "9lives"])
def test_reason_codes_have_a_fixed_shape(reason_code: str) -> None:
    """Lower snake case, 2-40 characters: the allowed list itself is policy."""
    with pytest.raises(ValidationError):
        write.RefundInput.model_validate({"order_id": "O-1", "amount": "1.00", "reason_code": reason_code})


# --- apply_account_credit -------------------------------------------------------------------

async def test_a_credit_raises_the_balance_and_undo_takes_it_back(make_ctx, scalar) -> None:
    """The account balance grows by the credit; undo reverses it and marks the credit reversed."""
    ctx = make_ctx()
    credit = await write.apply_account_credit(ctx, write.CreditInput(
        account_id=DEMO.account_id, amount=Decimal("25.00"), reason_code="goodwill"))
    assert (credit.credit_balance, credit.currency) == (Decimal("25.00"), "EUR")
    assert scalar("SELECT credit_minor FROM accounts WHERE id = ?", DEMO.account_id) == 2500
    await write.undo_action(ctx, write.UndoInput(action_id=credit.action_id, account_id=DEMO.account_id))
    assert scalar("SELECT credit_minor FROM accounts WHERE id = ?", DEMO.account_id) == 0
    assert scalar("SELECT reversed_at FROM account_credits WHERE id = ?", credit.credit_id) == ctx.now


async def test_a_credit_to_an_unknown_account_changes_nothing(make_ctx, snapshot) -> None:
    """NotFound, and no credit row or action is left behind."""
    before = snapshot()
    with pytest.raises(NotFound):
        await write.apply_account_credit(make_ctx(), write.CreditInput(account_id="A-999999", amount=Decimal("1.00"),
                                                                       reason_code="goodwill"))
    assert snapshot() == before


# --- cancel_subscription --------------------------------------------------------------------

async def test_an_active_subscription_is_cancelled_at_a_members_request(make_ctx, scalar) -> None:
    """Status, time, requester and reason are stored; renewal is cleared."""
    ctx = make_ctx()
    sub = await write.cancel_subscription(ctx, write.CancelInput(
        subscription_id=DEMO.subscription_id, requester_id=DEMO.account_admin, reason_code="customer_request"))
    assert (sub.status, sub.renews_at, sub.cancelled_at.timestamp()) == ("cancelled", None, ctx.now)
    assert scalar("SELECT cancelled_by FROM subscriptions WHERE id = ?", DEMO.subscription_id) == DEMO.account_admin


async def test_cancellation_is_refused_when_cancelled_or_asked_by_a_stranger(make_ctx, snapshot) -> None:
    """Someone outside the account, an unknown requester, or a second cancellation changes nothing."""
    ctx = make_ctx()
    stranger = write.CancelInput(subscription_id=DEMO.subscription_id, requester_id=DEMO.customer_id,
                                 reason_code="customer_request")
    await refused(write.cancel_subscription(ctx, stranger), "requester_not_related", snapshot)
    unknown = stranger.model_copy(update={"requester_id": "C-999999"})
    await refused(write.cancel_subscription(ctx, unknown), "not_found", snapshot)
    member = stranger.model_copy(update={"requester_id": DEMO.account_member})
    await write.cancel_subscription(ctx, member)
    await refused(write.preview_cancellation(ctx, member), "not_active", snapshot)
    await refused(write.cancel_subscription(ctx, member), "not_active", snapshot)


async def test_the_cancellation_preview_names_plan_price_account_and_requester(make_ctx) -> None:
    """A human reading the preview knows exactly what will be cancelled."""
    preview = await write.preview_cancellation(make_ctx(), write.CancelInput(
        subscription_id=DEMO.subscription_id, requester_id=DEMO.account_member, reason_code="customer_request"))
    assert preview == (f"Cancel subscription {DEMO.subscription_id} (Team plan, 49.00 EUR per month) of account "
                       f"{DEMO.account_id} at the request of {DEMO.account_member}; cancellation is final")


# --- add_ticket_note and escalate_to_human --------------------------------------------------

async def test_a_note_is_added_to_the_ticket(make_ctx, scalar) -> None:
    """The note is stored with its author and shows up on the ticket."""
    ctx = make_ctx()
    note = await write.add_ticket_note(ctx, write.NoteInput(ticket_id=DEMO.pii_ticket, body="Asked for photos."))
    assert note.customer_id == DEMO.customer_id
    assert scalar("SELECT actor FROM ticket_notes WHERE id = ?", note.note_id) == "agent-7"
    assert scalar("SELECT updated_at FROM tickets WHERE id = ?", DEMO.pii_ticket) == ctx.now


async def test_notes_are_bounded_and_need_a_known_ticket(make_ctx, snapshot) -> None:
    """An empty or overlong note is refused by the model; an unknown ticket by the backend."""
    for body in ("", "x" * 4001):
        with pytest.raises(ValidationError):
            write.NoteInput(ticket_id=DEMO.pii_ticket, body=body)
    before = snapshot()
    with pytest.raises(NotFound):
        await write.add_ticket_note(make_ctx(), write.NoteInput(ticket_id="T-999999", body="hello"))
    assert snapshot() == before


async def test_escalation_queues_a_handoff_with_the_agents_summary(make_ctx, scalar) -> None:
    """The hand-off keeps summary, what was tried, the proposal and priority; the ticket is escalated."""
    ctx = make_ctx()
    handoff = await write.escalate_to_human(ctx, write.EscalateInput(
        ticket_id=DEMO.pii_ticket, summary="Broken headphones", tried="Checked eligibility",
        proposed_action="Refund 129.90 EUR", priority="high"))
    assert (handoff.customer_id, handoff.status, handoff.priority, handoff.source) == (
        DEMO.customer_id, "queued", "high", "agent")
    assert scalar("SELECT proposed_action FROM handoffs WHERE id = ?", handoff.handoff_id) == "Refund 129.90 EUR"
    assert scalar("SELECT status FROM tickets WHERE id = ?", DEMO.pii_ticket) == "escalated"
    by_customer = await write.escalate_to_human(ctx, write.EscalateInput(
        customer_id=DEMO.account_admin, summary="s", tried="t", proposed_action="p"))
    assert (by_customer.ticket_id, by_customer.priority) == (None, "normal")


def test_an_escalation_needs_a_ticket_or_a_customer_and_a_known_priority() -> None:
    """Neither subject, or a made-up priority, is refused by the input model."""
    for arguments in ({"summary": "s", "tried": "t", "proposed_action": "p"},
                      {"customer_id": "C-1", "summary": "s", "tried": "t", "proposed_action": "p",
                       "priority": "critical"}):
        with pytest.raises(ValidationError):
            write.EscalateInput.model_validate(arguments)


# --- the fields the guard chain consumes ----------------------------------------------------

def _served(name: str) -> type[WriteInput]:
    """A write tool's input model as the server validates calls with it (the shipped policy's control fields)."""
    catalogue = build_catalogue()
    spec = served_catalogue(catalogue, load_policy(catalogue)).get(name)
    assert spec is not None
    return spec.input_model  # type: ignore[return-value]  # a write tool's model derives from WriteInput


async def test_chain_fields_are_accepted_and_ignored_by_handlers(make_ctx) -> None:
    """An idempotency key, confirmation token and customer code do not change what a handler does."""
    args = _served("cancel_subscription").model_validate(
        {"subscription_id": DEMO.subscription_id, "requester_id": DEMO.account_admin, "reason_code": "other",
         "idempotency_key": "key-0001", "confirmation_token": "x" * 200, "customer_code": "123456"})
    cancelled = await write.cancel_subscription(make_ctx(), args)
    assert cancelled.status == "cancelled"


@pytest.mark.parametrize("fields", [{"idempotency_key": "short"}, {"idempotency_key": "has space!"},
                                    {"confirmation_token": "x" * 4097}, {"customer_code": "12345"},
                                    {"customer_code": "abcdef"}])
def test_chain_fields_are_validated(fields: dict[str, Any]) -> None:
    """Malformed keys, oversized tokens and codes that are not six digits are refused."""
    model = _served("cancel_subscription")
    valid = {"subscription_id": DEMO.subscription_id, "requester_id": DEMO.account_admin, "reason_code": "other"}
    model.model_validate(valid)
    with pytest.raises(ValidationError):
        model.model_validate({**valid, **fields})


@pytest.mark.parametrize(("tool", "refused"), [
    ("add_ticket_note", "confirmation_token"), ("issue_refund", "customer_code"),
    ("change_shipping_address", "idempotency_key"), ("verify_identity", "confirmation_token")])
def test_a_control_field_is_refused_where_it_does_not_apply(tool: str, refused: str) -> None:
    """Only the tools whose policy asks for a confirmation take a token, and only a customer confirmation a code;
    an idempotent write takes no idempotency key."""
    assert refused not in _served(tool).model_fields
