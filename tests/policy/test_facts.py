"""The declared facts: every one is computable, each is tested the way its kind says, and a fact whose data
the configured backend does not keep fails closed - at start-up, and at call time should it get that far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deskgate.config import packaged
from deskgate.server.errors import BackendUnavailable, ConfigError
from deskgate.server.policy.facts import FACTS
from deskgate.server.policy.model import load_policy
from deskgate.server.store.db import Database
from deskgate.tools.backend.billing import PaymentFacts
from deskgate.tools.backend.composed import ComposedBackend, Domains
from deskgate.tools.backend.seed import seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.spec import ToolSpec

pytestmark = pytest.mark.anyio

PACKAGED = packaged("policy.toml").read_text(encoding="utf-8")
SECOND_REFUND = """
[[tools.issue_refund.gates]]
fact = "refunds_on_order"
at_most = 0
otherwise = "assist"
reason = "A second refund needs an approver."
"""


class BillingWithoutPaymentFacts:
    """A company's own billing adapter written before `PaymentFacts`: every billing method, no payment facts."""

    def __init__(self, inner: SqlSupportBackend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("failed_payment_count", "refund_count"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def _composed(demo: SqlSupportBackend, billing: object) -> ComposedBackend:
    return ComposedBackend(Domains(identity=demo, commerce=demo, billing=billing, tickets=demo,  # type: ignore[arg-type]
                                   journal=demo))


def test_every_fact_names_its_kind_and_its_source() -> None:
    """The payment facts need a backend reporting PaymentFacts; the number facts are gated with at_most."""
    assert {n for n, f in FACTS.items() if f.source is PaymentFacts} == {"payment_failed", "refunds_on_order"}
    assert {n for n, f in FACTS.items() if f.number} == {"days_since_delivery", "refunds_on_order"}


@pytest.mark.parametrize(("gate", "message"), [
    ('fact = "refunds_on_order"\nmust_be = false', "test it with `at_most`"),
    ('fact = "payment_failed"\nat_most = 0', "test it with `must_be`"),
    ('fact = "days_since_delivery"\nat_most = -1', "greater than or equal to 0"),
])
def test_a_gate_that_tests_a_fact_the_wrong_way_stops_start_up(tmp_path: Path, specs: dict[str, ToolSpec],
                                                                  gate: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(PACKAGED + f'\n[[tools.issue_refund.gates]]\n{gate}\notherwise = "assist"\nreason = "r"\n')
    with pytest.raises(ConfigError) as err:
        load_policy(specs.values(), path)
    assert message in err.value.reason and str(path) in err.value.reason


async def test_a_fact_the_backend_cannot_report_stops_start_up_and_fails_closed_at_call_time(
        tmp_path: Path, specs: dict[str, ToolSpec], database: Database) -> None:
    """Over a billing backend without PaymentFacts, a policy gating on refunds_on_order (or the shipped
    shipped payment_failed) does not load, naming file and line; asked anyway, the fact is an error, never 0."""
    demo = SqlSupportBackend(database)
    seed_demo(database, customers=0)
    path = tmp_path / "policy.toml"
    path.write_text(PACKAGED + SECOND_REFUND, encoding="utf-8")
    legacy = _composed(demo, BillingWithoutPaymentFacts(demo))
    assert not legacy.reports(PaymentFacts) and _composed(demo, demo).reports(PaymentFacts)
    with pytest.raises(ConfigError) as err:
        load_policy(specs.values(), path, backend=legacy)
    assert "needs a backend that reports PaymentFacts" in err.value.reason
    assert f"{path}:" in err.value.reason and "tools.issue_refund.gates" in err.value.reason
    assert load_policy(specs.values(), path, backend=_composed(demo, demo)).tools["issue_refund"].gates
    with pytest.raises(BackendUnavailable) as down:
        await legacy.refund_count("O-1")
    assert down.value.code == "fact_unavailable"
    assert await _composed(demo, demo).refund_count("O-1") == 0
