"""docs/POLICY.md's 7-day rollout, run as written: each day's blocks written, pinned and reloaded through
the CLI, and what the agent sees and may do checked through a real MCP client.

The blocks are read from the document itself, so the guide cannot drift from what deskgate does.
A block "replacing" the day before's tables is composed as the document says: each table in it
replaces the table of the same name (or its one-line form under `[tools]`), and each key above its
first table replaces the top-level key of that name.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from deskgate.scopes.roles import load_roles
from deskgate.server.policy.model import session_share
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import CLI, server_env

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parents[2] / "docs" / "POLICY.md"
_BLOCK = re.compile(r"```toml\n# day (\d): (roles|policy)\.toml([^\n]*)\n(.*?)```", re.S)
_HEADER = re.compile(r"^\[([^\[\]]+)\]\s*$")


def blocks() -> dict[tuple[int, str], tuple[bool, str]]:
    """(day, file) -> (does it replace tables of the day before, its text)."""
    found = {(int(day), name): ("replacing" in note or "on top of" in note, body)
             for day, name, note, body in _BLOCK.findall(DOC.read_text(encoding="utf-8"))}
    assert {day for day, _ in found} == set(range(1, 8)), "every day of the guide has its configuration"
    return found


def _sections(text: str) -> tuple[list[str], list[tuple[str | None, list[str]]]]:
    """Lines before the first table header, and each (header name or None for [[...]], lines)."""
    lines, top, sections = text.splitlines(), [], []
    for line in lines:
        if line.startswith("["):
            match = _HEADER.match(line)
            sections.append((match.group(1) if match else None, [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            top.append(line)
    return top, sections


def compose(previous: str, block: str) -> str:
    """The day before's file with the block's tables and top-level keys put in place."""
    top, sections = _sections(block)
    old_top, old_sections = _sections(previous)
    keys = {line.split("=", 1)[0].strip(): line for line in top if "=" in line and not line.startswith("#")}
    new_top = [keys.pop(line.split("=", 1)[0].strip(), line) if "=" in line else line for line in old_top]
    new_top = list(keys.values()) + new_top
    replacing = {name: lines for name, lines in sections if name is not None}
    out: list[tuple[str | None, list[str]]] = []
    for name, lines in old_sections:
        if name == "tools":  # a one-line table replaced by a table of the block
            lines = [line for line in lines if f"tools.{line.split('=', 1)[0].strip()}" not in replacing]
        out.append((name, replacing.pop(name, lines)))
    out += list(replacing.items())
    text = "\n".join(new_top + [line for _, lines in out for line in lines]) + "\n"
    tomllib.loads(text)  # still one valid file
    return text


async def cli(d: Deployment, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process([*CLI, *args], env=server_env(d), check=False)


class Guide:
    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.files = {"roles": "", "policy": ""}
        self.blocks = blocks()
        rows = d.rows("SELECT id, customer_id FROM orders WHERE status = 'delivered' AND refunded_minor = 0 "
                      "AND total_minor >= 5000 ORDER BY id")
        firsts: dict[str, str] = {}
        for order, customer in rows:
            firsts.setdefault(customer, order)
        self.orders = iter(firsts.values())  # one customer per check: per-customer limits stay out of the way

    async def day(self, n: int) -> None:
        for name in ("roles", "policy"):
            if (n, name) not in self.blocks:
                continue
            replaces, text = self.blocks[(n, name)]
            self.files[name] = compose(self.files[name], text) if replaces else text
            (self.d.home / f"{name}.toml").write_text(self.files[name])
        pinned = await cli(self.d, "manifest", "pin", "--yes")
        assert pinned.returncode == 0, pinned.stderr
        reloaded = await cli(self.d, "policy", "reload")
        assert reloaded.returncode == 0, reloaded.stderr

    def token(self, sub: str = "pilot", *, share: tuple[str, bool] | None = None) -> str:
        """A support-pilot session; with `share`, one inside (True) or outside that tool's rollout."""
        scopes = load_roles(self.d.home / "roles.toml").scopes_of("support-pilot")
        for _ in range(2000):
            token, issued = self.d.runtime.issuer.issue(sub, scopes, 1800)
            if share is None or (session_share(share[0], issued.sid) < 0.05) == share[1]:
                return token
        raise AssertionError("no session fell where it should")

    async def sees(self, token: str) -> set[str]:
        async with self.d.client(token) as client:
            return {t.name for t in (await client.list_tools()).tools}

    async def call(self, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
        async with self.d.client(token) as client:
            return await call(client, tool, **arguments)

    async def refund(self, token: str, amount: str, reason: str = "damaged_item", order: str | None = None) -> Any:
        return await self.call(token, "issue_refund", order_id=order or next(self.orders), amount=amount,
                               reason_code=reason)


def writes(d: Deployment) -> set[str]:
    return {s.name for s in d.runtime.catalogue if not s.read_only}


async def test_the_seven_day_rollout_of_docs_policy_md(deployment: Deployment) -> None:
    d, guide = deployment, Guide(deployment)

    # Day 1: one use case; the pilot reaches its reads, refunds and hand-offs, and nothing else.
    await guide.day(1)
    pilot = guide.token()
    assert (await guide.sees(pilot)) & writes(d) == {"issue_refund", "escalate_to_human"}
    assert (await guide.refund(pilot, "10.00"))["status"] == "confirmation_required"
    assert (await guide.call(pilot, "cancel_subscription", subscription_id="S-1", requester_id="C-2",
                             reason_code="other"))["code"] == "unknown_tool"

    # Day 2: thresholds and escalation routes, readable by the agent.
    await guide.day(2)
    pilot = guide.token()
    assert (await guide.refund(pilot, "10.00"))["status"] == "confirmation_required"
    assert (await guide.refund(pilot, "120.00"))["status"] == "pending_approval"
    assert (await guide.refund(pilot, "300.00"))["status"] == "escalated"
    rules = (await guide.call(pilot, "get_policy"))["data"]["rules"]["tools"]["issue_refund"]
    assert rules["thresholds"] == [{"above": "25.00", "tier": "assist"}, {"above": "200.00", "tier": "escalate"}]

    # Day 3: read-only, logged and redacted.
    await guide.day(3)
    pilot = guide.token()
    assert not (await guide.sees(pilot)) & writes(d)
    assert (await guide.refund(pilot, "10.00"))["code"] == "unknown_tool"
    customer = await guide.call(pilot, "get_customer", customer_id=d.demo.customer_id)
    assert customer["status"] == "ok" and customer["data"]["email"] != d.demo.customer_email
    reads = [r for r in d.audit_records() if r.get("tool") == "get_customer"]
    assert reads and d.demo.customer_email not in d.audit_text()

    # Day 4: one write, behind an approval step; approved, the repeated call runs once.
    await guide.day(4)
    pilot = guide.token()
    order = next(guide.orders)
    pending = await guide.refund(pilot, "10.00", order=order)
    assert pending["status"] == "pending_approval"
    approval = await d.runtime.approvals.get(pending["approval_id"])
    await d.runtime.approvals.decide(approval.id, approver="anna", approve=True, reason="ok",
                                     now=approval.requested_at)
    assert (await guide.refund(pilot, "10.00", order=order))["status"] == "ok"
    assert d.rows("SELECT refunded_minor FROM orders WHERE id = ?", (order,)) == [(1000,)]

    # Day 5: 5% of the sessions see refunds, decided per session; the rest hand off.
    await guide.day(5)
    inside, outside = guide.token("in", share=("issue_refund", True)), guide.token("out", share=("issue_refund", False))
    assert "issue_refund" in await guide.sees(inside) and "escalate_to_human" in await guide.sees(outside)
    assert "issue_refund" not in await guide.sees(outside)
    assert (await guide.refund(inside, "10.00"))["status"] == "confirmation_required"
    assert (await guide.refund(outside, "10.00"))["code"] == "unknown_tool"

    # Day 6: the QA fixes: not_delivered is no longer a refund reason; one refund per customer a day.
    await guide.day(6)
    inside = guide.token("in", share=("issue_refund", True))
    refused = await guide.refund(inside, "10.00", reason="not_delivered")
    # The reason list is the schema's enum: the dropped code is refused before the policy, counting nothing.
    assert (refused["status"], refused["code"]) == ("error", "invalid_arguments")
    order = next(guide.orders)
    preview = await guide.refund(inside, "10.00", order=order)
    assert preview["status"] == "confirmation_required"
    done = await guide.call(inside, "issue_refund", order_id=order, amount="10.00", reason_code="damaged_item",
                            confirmation_token=preview["confirmation_token"])
    assert done["status"] == "ok", done  # limits count executed refunds: this is the customer's one today
    assert (await guide.refund(inside, "11.00", order=order))["code"] == "rate_limited"

    # Day 7: credits, with the same guardrails and the same 5%.
    await guide.day(7)
    inside = guide.token("in", share=("apply_account_credit", True))
    outside = guide.token("out", share=("apply_account_credit", False))
    assert "apply_account_credit" in await guide.sees(inside)
    assert "apply_account_credit" not in await guide.sees(outside)
    credit = {"account_id": d.demo.account_id, "reason_code": "goodwill"}
    pending = await guide.call(inside, "apply_account_credit", amount="120.00", **credit)
    assert pending["status"] == "pending_approval", pending
    assert (await guide.call(outside, "apply_account_credit", amount="5.00", **credit))["code"] == "unknown_tool"

    versions = [r["policy_version"] for r in d.audit_records() if r.get("action") == "policy.reloaded"]
    assert len(versions) == len(set(versions)) == 7
