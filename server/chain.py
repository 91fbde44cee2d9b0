"""The guard chain: the one path every `tools/call` takes, in this order, here and nowhere else.

    1. authenticate  bearer token (HTTP header; DESKGATE_TOKEN on stdio) -> Session, or refuse
    2. resolve       the tool, only among those the session's scopes allow; parse its arguments
    3. authorize     object bindings (customer / ticket) and the token's amount cap
    4. policy        tier (automate / assist / escalate), gates, rate limits, breakers
    5. confirm       irreversible actions: preview + confirmation token; run only on redemption
    6. idempotency   a repeated key returns the first result and causes no second side effect
    7. execute       the tool against the support backend (writes: an intent record first)
    8. redact        the result, per the session's PII visibility; the bound customer only
    9. audit         a record before the answer goes out (durable for write tools, written for reads
                     unless audit.fsync_reads); if it cannot be written, fail closed

`GuardChain.call` reads top to bottom as that list. Each stage either returns what the next one
needs or raises a `DeskgateError`, whose `status` becomes the answer (denied, escalated, ...).
Nothing adds a stage at run time. Every answer, allowed or not, is audited (stage 9).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from deskgate.scopes.session import Session
from deskgate.server.errors import (
    AuditUnavailable,
    AuthenticationError,
    DeniedError,
    DeskgateError,
    IdempotencyConflict,
    InvalidArguments,
    NotFound,
)
from deskgate.server.outcome import Outcome, Status
from deskgate.server.policy.canonical import CONTROL_ARGUMENTS, argument_digest
from deskgate.server.policy_stage import PolicyStage, Verdict
from deskgate.server.redaction.redactor import Redactor, redact_text
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.base import SupportBackend
from deskgate.tools.context import ToolContext
from deskgate.tools.spec import Catalogue, ToolSpec

logger = logging.getLogger("deskgate.chain")


class Verifier(Protocol):
    async def verify(self, token: str) -> Session: ...


class AuditSink(Protocol):
    async def append(self, event: dict[str, Any], *, durable: bool = True) -> int: ...


@dataclass(slots=True)
class Call:
    """Everything the chain learns about one call, stage by stage (and what the audit record says)."""

    tool: str
    raw: dict[str, Any]
    request_id: str
    started: float
    now: int
    session: Session | None = None
    spec: ToolSpec | None = None
    args: BaseModel | None = None
    digest: str | None = None
    verdict: Verdict | None = None
    allowed_customer: str | None = None
    replayed: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChainSettings:
    max_argument_bytes: int
    reads_fail_closed: bool
    manifest_hash: str
    fsync_reads: bool = True  # False: a read answers once its record is written, before its fsync ends
    bind_manifest: bool = False  # tokens issued under another manifest stop working


class GuardChain:
    def __init__(
        self,
        *,
        verifier: Verifier,
        catalogue: Catalogue,
        backend: SupportBackend,
        state: StateStore,
        policy: PolicyStage,
        redactor: Redactor,
        audit: AuditSink,
        settings: ChainSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._catalogue = catalogue.freeze()
        self._backend = backend
        self._state = state
        self._policy = policy
        self._redactor = redactor
        self._audit = audit
        self._settings = settings
        self._clock = clock
        # Compiled once: the redaction maps of every tool's output and input.
        self._output_pii = {t.name: t.pii_classes() for t in catalogue}
        self._input_pii = {t.name: t.input_pii_classes() for t in catalogue}

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    @property
    def policy_version(self) -> str:
        return self._policy.version

    # -- the chain --------------------------------------------------------------------------

    async def call(self, credential: str | Session | None, tool: str, arguments: dict[str, Any] | None) -> Outcome:
        call = Call(tool=tool, raw=dict(arguments or {}), request_id=uuid.uuid4().hex,
                    started=time.perf_counter(), now=int(self._clock()))
        try:
            call.session = await self.authenticate(credential)            # 1
            call.spec, call.args = self.resolve(call)                      # 2
            await self.authorize(call)                                     # 3
            call.verdict = await self._policy.decide(call, self._backend)  # 4
            await self.confirm(call)                                       # 5
            outcome = await self.idempotent(call)                          # 6, 7, 8
        except DeskgateError as exc:
            outcome = Outcome.from_error(exc)
        except Exception:
            # Never a stack trace or exception text to the caller: it may carry data.
            logger.exception("internal error in tool %s (request %s)", tool, call.request_id)
            outcome = Outcome(status=Status.ERROR, code="internal_error",
                              reason=f"internal error; quote request {call.request_id} to the operator")
        if "executed" not in call.notes:
            await self._settle_unexecuted(call, outcome)
        return await self.audit(call, outcome)                             # 9

    async def visible_tools(self, credential: str | Session | None) -> list[ToolSpec]:
        """What `tools/list` shows: only the tools this session's scopes allow (none without a token)."""
        session = await self.authenticate(credential)
        return self._catalogue.visible_to(session.scopes)

    # -- 1. authenticate ----------------------------------------------------------------------

    async def authenticate(self, credential: str | Session | None) -> Session:
        """The session of this call. A `Session` comes from HTTP, where the bearer middleware verified the
        token (revocation included) earlier in this same request; a string is verified here."""
        if not credential:
            raise AuthenticationError("a valid session token is required", code="missing_token")
        session = credential if isinstance(credential, Session) else await self._verifier.verify(credential)
        if self._settings.bind_manifest and session.manifest_hash != self._settings.manifest_hash:
            raise AuthenticationError("the tools changed since this token was issued", code="manifest_changed")
        return session

    # -- 2. resolve ---------------------------------------------------------------------------

    def resolve(self, call: Call) -> tuple[ToolSpec, BaseModel]:
        assert call.session is not None
        spec = self._catalogue.get(call.tool)
        # An unknown tool and a tool outside the session's scopes get the same answer.
        if spec is None or not call.session.has_scope(spec.scope):
            raise DeniedError("no such tool for this session", code="unknown_tool")
        call.spec = spec
        if len(json.dumps(call.raw, ensure_ascii=False).encode()) > self._settings.max_argument_bytes:
            raise InvalidArguments("arguments are too large", code="arguments_too_large")
        try:
            args = spec.input_model.model_validate(call.raw)
        except ValidationError as exc:
            # Field names and pydantic's messages only (they describe the rule, never carry the input);
            # the rejected values are the caller's, maybe personal, data. Redacted all the same.
            problems = sorted({f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg'][:160]}"
                               for e in exc.errors(include_input=False, include_url=False)})
            raise InvalidArguments(redact_text("invalid arguments: " + "; ".join(problems[:10]))) from None
        call.digest = argument_digest(call.raw)
        return spec, args

    # -- 3. authorize -------------------------------------------------------------------------

    async def authorize(self, call: Call) -> None:
        assert call.session is not None and call.spec is not None and call.args is not None
        session = call.session
        amount = _field(call.args, "amount")
        if session.max_refund is not None and isinstance(amount, Decimal) and amount > session.max_refund:
            raise DeniedError("amount is above this session's limit", code="amount_cap")
        if session.customer is None and session.ticket is None:
            return
        call.allowed_customer = await self._bound_customer(session)
        for kind in call.spec.object_arguments():
            object_id = _field(call.args, kind)
            if object_id is None:
                continue
            if kind == "ticket_id" and session.ticket is not None and object_id != session.ticket:
                raise DeniedError("outside this session's binding", code="binding")
            try:
                owners = await self._backend.owners(kind, object_id)
            except NotFound:
                owners = frozenset()
            # Unknown and foreign objects look the same to a bound session: no existence oracle.
            if call.allowed_customer not in owners:
                raise DeniedError("outside this session's binding", code="binding")

    async def _bound_customer(self, session: Session) -> str:
        if session.customer is not None:
            return session.customer
        assert session.ticket is not None
        customer = await self._backend.customer_for("ticket_id", session.ticket)
        if customer is None:
            raise DeniedError("the session's ticket does not exist", code="binding")
        return customer

    # -- 5. confirm ---------------------------------------------------------------------------

    async def confirm(self, call: Call) -> None:
        assert call.spec is not None and call.verdict is not None
        if not call.verdict.needs_confirmation:
            return
        token = _field(call.args, "confirmation_token")
        if token is None:
            await self._policy.request_confirmation(call, self._context(call))  # raises ConfirmationRequired
            return
        call.replayed = await self._policy.redeem_confirmation(call, token, self._replay_allowed(call))

    def _replay_allowed(self, call: Call) -> Callable[[], Awaitable[bool]]:
        """A redeemed token may come back only as the retry of a finished idempotent call."""

        async def finished() -> bool:
            key = self._idempotency_key(call)
            return key is not None and await self._state.idempotency.is_done(key, call.digest or "")

        return finished

    # -- 6. idempotency -----------------------------------------------------------------------

    def _idempotency_key(self, call: Call) -> str | None:
        key = _field(call.args, "idempotency_key")
        if key is None or call.session is None:
            return None
        # Scoped to the session and the tool: one agent's key never collides with another's.
        return hashlib.sha256(f"{call.session.sid}\x00{call.tool}\x00{key}".encode()).hexdigest()

    async def idempotent(self, call: Call) -> Outcome:
        key = self._idempotency_key(call)
        if key is None:
            return await self.execute_and_redact(call)
        state, stored = await self._state.idempotency.claim(key, call.digest or "", call.now)
        if state == "conflict":
            raise IdempotencyConflict("this idempotency key was used with other arguments")
        if state == "in_progress":
            raise IdempotencyConflict("a call with this idempotency key is still running; retry later",
                                      code="idempotency_in_progress")
        if state == "done":
            assert stored is not None
            call.notes["idempotent_replay"] = True
            return Outcome.model_validate(stored)
        try:
            outcome = await self.execute_and_redact(call)
        except BaseException:
            if "executed" not in call.notes:
                await self._state.idempotency.release(key)  # nothing happened: a retry may run it
            else:
                # It ran but its answer failed after: a retry must not run it twice.
                await self._state.idempotency.complete(key, Outcome(
                    status=Status.ERROR, code="answer_failed",
                    reason="the action ran but its answer could not be produced; do not retry").wire())
            raise
        await self._state.idempotency.complete(key, outcome.wire())
        return outcome

    # -- 7. execute and 8. redact -------------------------------------------------------------

    async def execute_and_redact(self, call: Call) -> Outcome:
        assert call.spec is not None and call.args is not None and call.session is not None
        spec = call.spec
        if not spec.read_only:
            # Durable before the side effect: a crash between intent and outcome stays visible.
            call.notes["intent_seq"] = await self._audit.append(self._record(call, kind="intent"))
        result = await spec.handler(self._context(call), call.args)                     # 7
        call.notes["executed"] = True
        data = result.model_dump(mode="json")
        self._check_result_binding(call, data)
        visible = self._redactor.redact_output(data, self._output_pii[spec.name], call.session.scopes)  # 8
        call.notes["result_digest"] = _digest(data)
        if spec.money:
            call.notes["currency"] = data.get("currency")
        await self._policy.finish(call, ok=True, result={"status": "ok", "data": visible})
        return Outcome(status=Status.OK, data=visible)

    async def _settle_unexecuted(self, call: Call, outcome: Outcome) -> None:
        """A call that did not run (refused, replayed, failed) gives back the money stage 4 reserved for it
        and closes the approval it claimed, with this answer - in one place, whatever stopped it."""
        try:
            await self._policy.release(call)
            await self._policy.finish(call, ok=outcome.status == Status.OK, result=outcome.wire())
        except DeskgateError as exc:
            logger.error("could not settle an unexecuted call (request %s): %s", call.request_id, exc.reason)

    def _check_result_binding(self, call: Call, data: Any) -> None:
        if call.allowed_customer is None:
            return
        if any(c != call.allowed_customer for c in _customer_ids(data)):
            raise DeniedError("outside this session's binding", code="binding")

    def _context(self, call: Call) -> ToolContext:
        assert call.session is not None
        session = call.session
        return ToolContext(backend=self._backend, session=session, state=self._state,
                           request_id=call.request_id, now=call.now,
                           policy_view=lambda: self._policy.view_for(session),
                           undo_windows=self._policy.undo_windows, intent_seq=call.notes.get("intent_seq"),
                           idempotency_scope=self._idempotency_key(call))

    # -- 9. audit -----------------------------------------------------------------------------

    async def audit(self, call: Call, outcome: Outcome) -> Outcome:
        kind = "outcome" if "intent_seq" in call.notes else "call"
        # A write tool's record is fsync'd before its answer whatever happened to it; a read's may
        # answer once written (see `AuditSection.fsync_reads`).
        durable = self._settings.fsync_reads or (call.spec is not None and not call.spec.read_only)
        try:
            record = self._record(call, kind=kind, outcome=outcome)
            outcome.audit_seq = await self._audit.append(record, durable=durable)
        except AuditUnavailable as exc:
            logger.error("audit log unavailable: %s (request %s)", exc.reason, call.request_id)
            executed = "intent_seq" in call.notes
            if executed or self._settings.reads_fail_closed or call.spec is None or not call.spec.read_only:
                reason = ("the action ran but its audit record could not be written; the operator must check"
                          if executed else "the audit log is unavailable; nothing was done")
                return Outcome(status=Status.ERROR, code="audit_unavailable", reason=reason)
        return outcome

    def _audited_arguments(self, call: Call) -> dict[str, Any]:
        """The arguments as the audit record keeps them: validated ones redacted by their declared PII
        classes; for a call whose arguments failed validation only their names (their values' types are
        unknown, so no declaration can be trusted to mask them)."""
        if call.spec is None:
            return {}
        if call.args is None:
            return {"arg_names": sorted(str(k)[:64] for k in call.raw)[:50]}
        validated = call.args.model_dump(mode="json", exclude_none=True)
        return {"args": self._redactor.redact_for_audit(validated, self._input_pii[call.spec.name])}

    def _record(self, call: Call, *, kind: str, outcome: Outcome | None = None) -> dict[str, Any]:
        session, spec = call.session, call.spec
        record: dict[str, Any] = {
            "kind": kind,
            "request_id": call.request_id,
            "tool": call.tool if spec is not None else redact_text(call.tool[:64]),
            "sub": session.sub if session else None,
            "sid": session.sid if session else None,
            "jti": session.jti if session else None,
            "policy_version": self._policy.version,
            "manifest_hash": self._settings.manifest_hash,
            "args_digest": call.digest,
            **self._audited_arguments(call),
        }
        if call.verdict is not None:
            record["decision"] = call.verdict.audit()
        if spec is not None and spec.money and call.args is not None:
            record["money"] = {"amount": str(getattr(call.args, "amount", "")), "tool": spec.name,
                               "currency": call.notes.get("currency")}
        if outcome is not None:
            record.update(status=outcome.status.value, code=outcome.code, reason=outcome.reason,
                          result_digest=call.notes.get("result_digest"),
                          replayed=call.notes.get("idempotent_replay", False) or None,
                          latency_ms=round((time.perf_counter() - call.started) * 1000, 3))
            for extra in ("approval_id", "escalation_id"):
                if getattr(outcome, extra):
                    record[extra] = getattr(outcome, extra)
            if outcome.confirmation_token:
                record["confirmation_issued"] = True
        return {k: v for k, v in record.items() if v is not None}


def _field(args: BaseModel | None, name: str) -> Any:
    """A declared input field's value, None if the tool has no such field. Declared fields live in the
    model's `__dict__`; `getattr` on a missing one costs a pydantic `__getattr__` and a raised error."""
    return None if args is None else args.__dict__.get(name)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _customer_ids(data: Any) -> list[str]:
    if isinstance(data, dict):
        found = [v for k, v in data.items() if k == "customer_id" and isinstance(v, str)]
        return found + [c for v in data.values() for c in _customer_ids(v)]
    if isinstance(data, list):
        return [c for v in data for c in _customer_ids(v)]
    return []


__all__ = ["CONTROL_ARGUMENTS", "Call", "ChainSettings", "GuardChain"]
