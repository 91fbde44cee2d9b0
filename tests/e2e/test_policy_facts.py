"""The guide's own policy examples as facts from the backend, through a real MCP client on both engines:
a cancellation after a failed payment escalates (shipped), refunds only within 30 days of delivery and a
second refund on the same order needs approval (the configuration `docs/POLICY.md` shows, read from there).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deskgate.config import packaged
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import confirmed, on_clock, verified
from tests.e2e.test_scenarios_cancellation import codes_sent, subscription_state

pytestmark = pytest.mark.anyio

DAY = 86400
DOCS = Path(__file__).resolve().parents[2] / "docs" / "POLICY.md"


def documented_policy(directory: Path) -> Path:
    """The shipped policy plus the refund gates exactly as docs/POLICY.md shows them."""
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    refund_gates = [b for b in blocks if "days_since_delivery" in b and "refunds_on_order" in b]
    assert len(refund_gates) == 1
    path = directory / "policy.toml"
    path.write_text(packaged("policy.toml").read_text(encoding="utf-8") + "\n" + refund_gates[0], encoding="utf-8")
    return path


def fail_a_payment(d: Deployment, subscription_id: str, account_id: str, customer_id: str) -> None:
    """An open invoice of the subscription whose collection failed, as the billing side records it."""
    d.runtime.backend_db.write_sync(lambda tx: (
        tx.execute("INSERT INTO invoices (id, customer_id, account_id, subscription_id, amount_minor, currency,"
                   " status, issued_at, due_at, paid_at) VALUES ('I-900', ?, ?, ?, 4900, 'EUR', 'open', 0, 0, NULL)",
                   (customer_id, account_id, subscription_id)),
        tx.execute("INSERT INTO payment_failures (invoice_id, failed_at) VALUES ('I-900', 1)")))


async def test_a_cancellation_after_a_failed_payment_escalates(deployment: Deployment) -> None:
    """S-1's payment failed: the admin's cancellation escalates on `payment_failed` (not just open invoices),
    no code is e-mailed, S-1 stays active."""
    on_clock(deployment)
    demo = deployment.demo
    fail_a_payment(deployment, demo.subscription_id, demo.account_id, demo.account_admin)
    async with deployment.client(deployment.token("billing-agent")) as client:
        await verified(client, demo.account_admin)
        escalated = await call(client, "cancel_subscription", subscription_id=demo.subscription_id,
                               requester_id=demo.account_admin, reason_code="not_using")
        policy = await call(client, "get_policy")
    assert (escalated["status"], escalated["code"]) == ("escalated", "gate_payment_failed"), escalated
    assert "payment of this subscription failed" in escalated["reason"]
    assert codes_sent(deployment) == 0
    assert subscription_state(deployment, demo.subscription_id) == ("active", None)
    gates = policy["data"]["rules"]["tools"]["cancel_subscription"]["gates"]
    assert {"requires": "not payment_failed", "otherwise": "escalate"}.items() <= gates[1].items()


async def test_a_refund_past_the_delivery_window_needs_an_approver(deployment: Deployment, tmp_path: Path) -> None:
    """With the documented gate, O-1 (delivered 10 days ago) refunds on its own; 21 days later it waits for an
    approver (`gate_days_since_delivery`); an order not delivered yet passes (`if_absent = "pass"`)."""
    clock = on_clock(deployment, documented_policy(tmp_path))
    demo = deployment.demo
    deployment.runtime.backend_db.write_sync(lambda tx: tx.execute(
        "UPDATE orders SET delivered_at = ? WHERE id = ?", (clock.now - 10 * DAY, demo.delivered_order)))
    refund = {"order_id": demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        within = await call(client, "issue_refund", **refund)
        undelivered = await call(client, "issue_refund", order_id=demo.shipped_order, amount="10.00",
                                 reason_code="not_delivered")
        view = await call(client, "get_policy")
        clock.advance(21 * DAY)
        late = await call(client, "issue_refund", **refund)
    assert within["status"] == "confirmation_required", within
    assert undelivered["status"] == "confirmation_required", undelivered
    assert (late["status"], late["code"]) == ("pending_approval", "gate_days_since_delivery"), late
    assert "more than 30 days ago" in late["reason"]
    requires = [g["requires"] for g in view["data"]["rules"]["tools"]["issue_refund"]["gates"]]
    assert "days_since_delivery <= 30" in requires and "refunds_on_order <= 0" in requires


async def test_a_second_refund_on_the_same_order_needs_an_approver(deployment: Deployment, tmp_path: Path) -> None:
    """The first refund of O-1 runs after its confirmation; the second waits for an approver
    (`gate_refunds_on_order`), and nothing more is refunded."""
    clock = on_clock(deployment, documented_policy(tmp_path))
    demo = deployment.demo
    deployment.runtime.backend_db.write_sync(lambda tx: tx.execute(
        "UPDATE orders SET delivered_at = ? WHERE id = ?", (clock.now - 10 * DAY, demo.delivered_order)))
    refund = {"order_id": demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        first = await confirmed(client, "issue_refund", **refund)
        second = await call(client, "issue_refund", **refund)
    assert first["status"] == "ok", first
    assert (second["status"], second["code"]) == ("pending_approval", "gate_refunds_on_order"), second
    assert deployment.rows("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (demo.delivered_order,)) == [(1,)]
