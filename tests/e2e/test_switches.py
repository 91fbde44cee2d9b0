"""What a deployment switches per tool, per role and as a whole, seen through a real MCP client.

A tool switched off, a write of a read-only deployment and a tool outside its rollout share are not
listed and answer exactly like an unknown tool; a role's own rules decide its sessions' calls; a
deployment's roles.toml replaces the shipped roles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deskgate.config import packaged
from deskgate.server.policy.model import session_share
from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

SHIPPED = packaged("policy.toml").read_text(encoding="utf-8")
UNKNOWN = {"status": "denied", "code": "unknown_tool"}


def policy(home: Path, text: str) -> Path:
    """The deployment's own policy file: the shipped one with `text` changes."""
    path = home / "policy.toml"
    path.write_text(text)
    return path


def add_keys(table: str, keys: str, base: str = SHIPPED) -> str:
    """The policy with `keys` added at the top of `[table]`."""
    assert f"[{table}]\n" in base
    return base.replace(f"[{table}]\n", f"[{table}]\n{keys}\n", 1)


async def listed(d: Deployment, token: str) -> set[str]:
    async with d.client(token) as client:
        return {t.name for t in (await client.list_tools()).tools}


async def refused_like_unknown(d: Deployment, token: str, tool: str, **arguments: object) -> None:
    async with d.client(token) as client:
        result = await call(client, tool, **arguments)
        unknown = await call(client, "no_such_tool", **arguments)
    assert {k: result.get(k) for k in ("status", "code", "reason")} == \
        {k: unknown.get(k) for k in ("status", "code", "reason")}
    assert {k: result[k] for k in UNKNOWN} == UNKNOWN


async def test_a_tool_switched_off_is_not_listed_not_in_the_manifest_and_answers_like_an_unknown_tool(
        deployment: Deployment) -> None:
    d = deployment
    d.runtime.wire(policy_path=policy(d.home, add_keys("tools.issue_refund", "enabled = false")))
    token = d.token("billing-agent")
    assert "issue_refund" not in await listed(d, token)
    assert "issue_refund" not in d.runtime.manifest["tools"]
    await refused_like_unknown(d, token, "issue_refund", order_id=d.demo.delivered_order, amount="10.00",
                               reason_code="damaged_item")
    assert d.rows("SELECT count(*) FROM refunds WHERE order_id = ?", (d.demo.delivered_order,)) == [(0,)]


async def test_read_only_takes_every_write_away_including_undo_and_an_approved_call(deployment: Deployment) -> None:
    """An approval granted before the switch does not reach the backend after it; undo_action is gone too."""
    d = deployment
    token = d.token("billing-agent")
    async with d.client(token) as client:
        pending = await call(client, "issue_refund", order_id=d.demo.delivered_order, amount="120.00",
                             reason_code="damaged_item")
    assert pending["status"] == "pending_approval"
    approval = await d.runtime.approvals.get(pending["approval_id"])
    assert approval is not None
    await d.runtime.approvals.decide(approval.id, approver="anna", approve=True, reason="ok",
                                     now=approval.requested_at)

    d.runtime.wire(policy_path=policy(d.home, "read_only = true\n" + SHIPPED))
    names = await listed(d, token)
    writes = {s.name for s in d.runtime.catalogue if not s.read_only}
    assert names and not names & writes
    assert not set(d.runtime.manifest["tools"]) & writes
    await refused_like_unknown(d, token, "issue_refund", order_id=d.demo.delivered_order, amount="120.00",
                               reason_code="damaged_item")
    await refused_like_unknown(d, token, "undo_action", action_id="ACT-1")
    assert d.rows("SELECT count(*) FROM refunds WHERE order_id = ?", (d.demo.delivered_order,)) == [(0,)]
    async with d.client(token) as client:
        view = await call(client, "get_policy")
    assert view["status"] == "ok" and not set(view["data"]["rules"]["tools"]) & writes


async def test_a_rollout_offers_the_tool_to_the_same_sessions_every_time(deployment: Deployment) -> None:
    """rollout = 0.3: each session gets the tool or not by its signed sid, and keeps that answer."""
    d = deployment
    d.runtime.wire(policy_path=policy(d.home, add_keys("tools.apply_account_credit", "rollout = 0.3")))
    tokens = [d.token("billing-agent", sub=f"agent-{i}") for i in range(24)]
    seen = []
    for token in tokens:
        session = await d.runtime.verifier.verify(token)
        expected = session_share("apply_account_credit", session.sid) < 0.3
        first, again = await listed(d, token), await listed(d, token)
        assert ("apply_account_credit" in first) == ("apply_account_credit" in again) == expected
        seen.append(expected)
        if not expected:
            await refused_like_unknown(d, token, "apply_account_credit", account_id=d.demo.account_id,
                                       amount="5.00", reason_code="goodwill")
    assert any(seen) and not all(seen)
    assert d.runtime.manifest["tools"]["apply_account_credit"]["policy"]["rollout"] == 0.3


def test_the_rollout_share_is_spread_evenly_and_cannot_be_chosen_by_the_caller() -> None:
    """Over random sids about 5% fall in a 0.05 rollout; the sid is drawn by the issuer and signed, and the
    share depends on the tool too, so a session in one tool's 5% is not thereby in another's."""
    import secrets

    sids = [secrets.token_urlsafe(24) for _ in range(4000)]
    inside = [s for s in sids if session_share("issue_refund", s) < 0.05]
    assert 120 <= len(inside) <= 280
    assert sum(session_share("apply_account_credit", s) < 0.05 for s in inside) < len(inside) / 2


async def test_a_token_with_a_chosen_session_id_is_refused(deployment: Deployment) -> None:
    """The sid is signed: changing it to one inside the rollout breaks the token."""
    import base64
    import json

    d = deployment
    token = d.token("billing-agent")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sid"] = next(s for s in (f"chosen-session-{i:04d}" for i in range(10000))
                         if session_share("issue_refund", s) < 0.05)
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), signature])
    async with d.client(forged) as client:
        result = await call(client, "get_policy")
    assert result["status"] == "denied"


async def test_a_role_has_its_own_thresholds(deployment: Deployment) -> None:
    """Supervisors refund up to 200.00 on their own; billing agents still need an approver above 50.00."""
    d = deployment
    text = SHIPPED + '\n[roles.supervisor.tools.issue_refund]\nthresholds = [{ above = "200.00", tier = "assist" }]\n'
    d.runtime.wire(policy_path=policy(d.home, text))
    arguments = {"order_id": d.demo.delivered_order, "amount": "120.00", "reason_code": "damaged_item"}
    async with d.client(d.token("billing-agent")) as client:
        assert (await call(client, "issue_refund", **arguments))["status"] == "pending_approval"
    async with d.client(d.token("supervisor", sub="sup-1")) as client:
        preview = await call(client, "issue_refund", **arguments)
        assert preview["status"] == "confirmation_required"
        view = await call(client, "get_policy")
    assert view["data"]["rules"]["tools"]["issue_refund"]["thresholds"] == [{"above": "200.00", "tier": "assist"}]
    entry = d.runtime.manifest["tools"]["issue_refund"]["policy"]
    assert entry["by_role"]["supervisor"]["thresholds"] == [{"above": "200.00", "tier": "assist"}]


@pytest.mark.parametrize(("text", "message"), [
    ('[roles.nobody.tools.issue_refund]\ntier = "assist"\n', "unknown role 'nobody'"),
    ('[roles.supervisor.tools.issue_refund]\nthresholds = [{ above = "10.00", tier = "automate" }]\n', "stricter"),
    ('[roles.supervisor.tools.get_order]\ntier = "assist"\n', "no table"),
    ('[tools.get_order]\ntier = "assist"\n', "read tool"),
    ('[roles.supervisor.tools.issue_refund]\nconfirmation = "customer"\n', "cannot change confirmation"),
    ('[roles.supervisor.tools.issue_refund]\nreason_codes = "credit"\n', "cannot change reason_codes"),
    ("[roles.tier1-agent.tools.issue_refund]\nenabled = false\n"
     "[roles.billing-agent.tools.issue_refund]\nenabled = true\n", None),
])
async def test_a_bad_role_override_stops_loading_with_file_and_line(deployment: Deployment, text: str,
                                                                     message: str | None) -> None:
    from deskgate.server.errors import ConfigError

    d = deployment
    path = policy(d.home, SHIPPED + "\n" + text)
    if message is None:  # roles that include one another: a chain, accepted
        d.runtime.wire(policy_path=path)
        return
    with pytest.raises(ConfigError) as raised:
        d.runtime.wire(policy_path=path)
    assert message in raised.value.reason and raised.value.file == str(path) and raised.value.line


async def test_a_deployment_roles_file_replaces_the_shipped_roles(home: Path, engine: str | None) -> None:
    """$DESKGATE_HOME/roles.toml: `token issue --role` and the manifest use it."""
    from tests.e2e.conftest import deployed
    from tests.e2e.test_transports import CLI

    home.mkdir(parents=True)
    shipped_roles = packaged("roles.toml").read_text()
    (home / "roles.toml").write_text(shipped_roles + '\n[roles.lookup-only]\ndescription = "Reads orders."\n'
                                     'scopes = ["orders:read", "policy:read"]\n')
    async with deployed(home, engine) as d:
        assert d.runtime.manifest["roles"]["lookup-only"] == ["orders:read", "policy:read"]
        import anyio

        from tests.e2e.test_transports import server_env
        done = await anyio.run_process([*CLI, "token", "issue", "--sub", "reader", "--role", "lookup-only"],
                                       env=server_env(d), check=False)
        assert done.returncode == 0, done.stderr
        token = done.stdout.decode().strip()
        names = await listed(d, token)
        scopes = {d.runtime.catalogue.get(n).scope for n in names}  # type: ignore[union-attr]
    assert names and scopes == {"orders:read", "policy:read"}


async def test_a_tool_switched_on_for_one_role_only_is_in_the_manifest_and_offered_to_that_role_only(
        deployment: Deployment) -> None:
    """Switched off for everyone but supervisors: the manifest still lists it (it is served), with the role's rules."""
    d = deployment
    text = add_keys("tools.cancel_subscription", "enabled = false") + \
        "\n[roles.supervisor.tools.cancel_subscription]\nenabled = true\n"
    d.runtime.wire(policy_path=policy(d.home, text))
    entry = d.runtime.manifest["tools"]["cancel_subscription"]["policy"]
    assert entry["enabled"] is False and entry["by_role"]["supervisor"]["tier"] == "automate"
    assert "cancel_subscription" not in await listed(d, d.token("billing-agent"))
    assert "cancel_subscription" in await listed(d, d.token("supervisor", sub="sup-1"))
