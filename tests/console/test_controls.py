"""Manifest and Breakers pages over HTTP: everyone sees them, only an admin pins or resets, both audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deskgate.server.manifest import lock
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import confirmed, policy_file

from .conftest import agent, audit_actions, browser_client, form_token, log_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def lower_breaker(home: Path) -> Path:
    """The deployment's own policy (read by the served process at start): a money breaker of 60.00 an hour."""
    home.mkdir(parents=True, exist_ok=True)
    return policy_file(home, ('per_hour = "1500.00"', 'per_hour = "60.00"'))


async def test_a_tripped_breaker_and_an_unpinned_manifest_are_shown_and_only_an_admin_resets_or_pins(
        lower_breaker: Path, deployment: Deployment, http_server: str, member: Any) -> None:
    apo, ada = member("apo"), member("ada", "admin")
    async with agent(http_server, deployment) as client:
        assert (await confirmed(client, "issue_refund", order_id="O-1", amount="40.00",
                                reason_code="damaged_item"))["status"] == "ok"
        trip = await call(client, "issue_refund", order_id="O-3", amount="30.00", reason_code="damaged_item")
        assert trip["code"] == "breaker_open"
    async with browser_client(http_server) as http:
        await log_in(http, http_server, apo)
        breakers = await http.get("/console/breakers")
        assert 'id="breaker-money"' in breakers.text and "Reset" not in breakers.text
        assert (await http.post("/console/breakers/money/reset",
                                data={"csrf": form_token(breakers.text)})).status_code == 403
        manifest = await http.get("/console/manifest")
        assert "differs from the pinned one" in manifest.text and "money_breaker" in manifest.text
        assert 'id="pin"' not in manifest.text
        assert (await http.post("/console/manifest/pin", data={"csrf": form_token(manifest.text)})).status_code == 403
    assert not (deployment.home / "manifest.lock").exists()
    async with browser_client(http_server) as http:
        await log_in(http, http_server, ada)
        csrf = form_token((await http.get("/console/breakers")).text)
        assert (await http.post("/console/breakers/money/reset", data={"csrf": csrf})).status_code == 303
        assert "Every breaker is closed" in (await http.get("/console/breakers")).text
        again = await http.post("/console/breakers/money/reset", data={"csrf": csrf})
        assert again.status_code == 404
        page = await http.get("/console/manifest")
        assert (await http.post("/console/manifest/pin", data={"csrf": form_token(page.text)})).status_code == 303
        assert "exactly the pinned one" in (await http.get("/console/manifest")).text
    assert deployment.runtime.state.breakers.list_sync() == []
    pinned = lock.load(deployment.home / "manifest.lock")["manifest_hash"]
    actions = {(r["actor"], r["action"]): r for r in audit_actions(deployment)}
    assert actions[("ada", "breaker.reset")]["breaker"] == "money"
    assert actions[("ada", "manifest.pinned")]["manifest_hash"] == pinned
