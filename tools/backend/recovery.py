"""Start-up recovery of money intents a crashed process left without an outcome.

For every intent the ledger still calls `started` whose process is gone, the system it acted on
is asked what became of it (`settle_unfinished`: looked up by the intent's metadata). The audit
log gets the missing outcome record (`recovered: true`), a call that carried an idempotency
key gets its stored result, so repeating it answers the first result and acts no second time, and
what the call had reserved on the limits and money counters is settled: kept if the system acted,
given back if it did not (`settle`, by request id).
A system that cannot be reached leaves the intent started for the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from deskgate.server.errors import DeskgateError
from deskgate.server.outcome import Outcome, Status
from deskgate.tools.backend.ledger import IntentLedger, LedgerEntry, process_gone

logger = logging.getLogger("deskgate.backend")


@runtime_checkable
class Recoverable(Protocol):
    system: str

    async def settle_unfinished(self, entry: LedgerEntry) -> dict[str, Any] | None: ...


Append = Callable[[dict[str, Any]], int]  # a durable audit append (blocking)


async def recover_intents(ledger: IntentLedger, systems: list[Recoverable], audit: Append,
                          redact: Callable[[str, dict[str, Any]], dict[str, Any]],
                          complete: Callable[[str, dict[str, Any]], Awaitable[None]],
                          settle: Callable[[str, bool], Awaitable[object]]) -> list[int]:
    """Settle what can be settled; returns the seqs of the outcome records written."""
    written: list[int] = []
    for system in systems:
        for entry in await ledger.unsettled(system.system):
            if not process_gone(entry):
                continue
            try:
                result = await system.settle_unfinished(entry)
            except DeskgateError as exc:
                logger.warning("intent of request %s not settled: %s", entry.intent.request_id, exc.code)
                continue
            written.append(await _record(entry, result, audit, redact, complete))
            await settle(entry.intent.request_id, result is not None)
    return written


async def _record(entry: LedgerEntry, result: dict[str, Any] | None, audit: Append,
                  redact: Callable[[str, dict[str, Any]], dict[str, Any]],
                  complete: Callable[[str, dict[str, Any]], Awaitable[None]]) -> int:
    event: dict[str, Any] = {"kind": "outcome", "request_id": entry.intent.request_id, "tool": entry.tool,
                             "intent_seq": entry.intent.seq, "recovered": True}
    if result is None:
        event.update(status="error", code="not_executed",
                     reason="the process stopped before the system acted; nothing was done")
        outcome = None
    else:
        event.update(status="ok", result_digest=hashlib.sha256(
            json.dumps(result, sort_keys=True, separators=(",", ":")).encode()).hexdigest())
        if "amount" in result:
            event["money"] = {"amount": str(result["amount"]), "tool": entry.tool, "currency": result.get("currency")}
        outcome = Outcome(status=Status.OK, data=redact(entry.tool, result))
    seq = audit({k: v for k, v in event.items() if v is not None})
    if outcome is not None and entry.intent.key != entry.intent.request_id:
        outcome.audit_seq = seq
        await complete(entry.intent.key, outcome.wire())
    return seq
