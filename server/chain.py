"""The guard chain: the one path every `tools/call` takes, in this order, here and nowhere else.

    1. authenticate  the Session the transport's `Authenticator` admitted, or its Refusal answered
    2. resolve       the tool, only among those the session's scopes allow and the policy offers it
                     (not switched off, not a write of a read-only deployment, within its rollout);
                     parse its arguments
    3. authorize     object bindings (customer / ticket) and the token's amount cap
    4. policy        tier (automate / assist / escalate), gates, rate limits, breakers
    5. confirm       irreversible actions: preview + confirmation token; run only on redemption
    6. idempotency   a repeated key returns the first result and causes no second side effect
    7. execute       the tool against the support backend (writes: an intent record first)
    8. redact        the result, per the session's PII visibility; the bound customer only
    9. audit         a record before the answer goes out (durable for write tools, written for reads
                     unless audit.fsync_reads); if it cannot be written, fail closed

Before stage 1 the call takes the deployment's published policy (`server/policy_source.py`) and keeps
it to the end: one policy decides, confirms and audits each call. `GuardChain.call` reads top to
bottom as that list. Each stage either returns what the next one
needs or raises a `DeskgateError`, whose `status` becomes the answer (denied, escalated, ...).
Nothing adds a stage at run time. Every answer, allowed or not, is audited (stage 9).

Invariants the order carries (docs/SECURITY.md, "Invariants of the guard chain"):
- Every check a result could fail runs before stage 7: stage 3 resolves each object the call names
  or implies (a requester, an object's customer and account, the recorded action an undo acts on).
  After the side effect nothing refuses: an executed call is answered and audited as executed,
  with its data withheld if it names anything outside the session's binding.
- Every side effect - stage 7's and those of stages 4-5 (hand-off, approval row, customer code) -
  follows a durable intent record (`GuardChain.intend`).
- For a session bound to a customer, a lookup that finds nothing and one that finds someone else's
  object answer alike (`denied`/`binding`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, get_args

from pydantic import BaseModel, ValidationError

from deskgate.scopes.authenticator import Refusal
from deskgate.scopes.session import Session
from deskgate.server import telemetry
from deskgate.server.errors import (
    AuditUnavailable,
    DeniedError,
    DeskgateError,
    IdempotencyConflict,
    InvalidArguments,
    NotFound,
    StageOrderError,
    StoreUnavailable,
)
from deskgate.server.outcome import Outcome, Status
from deskgate.server.policy.canonical import CONTROL_ARGUMENTS, argument_digest, normalised
from deskgate.server.policy_source import PolicySource
from deskgate.server.policy_stage import Effect, PolicyStage, Verdict
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.fingerprint import FingerprintKey
from deskgate.server.redaction.redactor import Redactor, redact_text, supplied_values
from deskgate.server.store.state import RecordedAction, StateStore
from deskgate.tools.backend.base import ObjectKind, SupportBackend
from deskgate.tools.context import ToolContext
from deskgate.tools.spec import Catalogue, ToolSpec

logger = logging.getLogger("deskgate.chain")


class AuditSink(Protocol):
    async def append(self, event: dict[str, Any], *, durable: bool = True) -> int: ...


_OBJECT_KINDS: dict[str, ObjectKind] = {kind: kind for kind in get_args(ObjectKind)}
# Arguments that name an object under another name than its kind: checked against bindings like one.
NAMED_PARTIES: dict[str, ObjectKind] = {"requester_id": "customer_id"}
# Result fields that name whose data a result is: a bound session may see only its own.
_RESULT_OWNERS = ("customer_id", "account_id")
_OUTSIDE = "outside this session's binding"


@dataclass(slots=True)
class Call:
    """Everything the chain learns about one call, stage by stage (and what the audit record says)."""

    tool: str
    raw: dict[str, Any]
    request_id: str
    started: float
    now: int
    policy: PolicyStage | None = None      # the one policy that decides, confirms and audits this call
    session: Session | None = None
    spec: ToolSpec | None = None
    args: BaseModel | None = None
    meaning: dict[str, Any] | None = None  # the validated arguments, normalised: what the call does
    digest: str | None = None              # of `meaning`: what confirmations, approvals and keys bind to
    idempotency_scope: str | None = None   # the call's idempotency key, scoped to session and tool
    verdict: Verdict | None = None
    allowed_customer: str | None = None
    target: RecordedAction | None = None   # stage 3: the recorded action the call acts on (an undo)
    replayed: bool = False                 # stage 5: a confirmation presented again by an idempotent retry
    intent_seq: int | None = None          # the first durable intent record of a side effect
    executed: bool = False                 # stage 7 ran a write: from here on nothing may refuse the call
    idempotent_replay: bool = False        # stage 6 answered with the first call's stored result
    result_digest: str | None = None
    currency: str | None = None            # of a money tool's payout

    def stage(self) -> PolicyStage:
        if self.policy is None:
            raise StageOrderError("a stage ran before the call's policy was chosen")
        return self.policy

    def resolved(self) -> tuple[ToolSpec, Session]:
        """The tool and session of a call past stage 2 (a stage that runs earlier is a bug in the chain)."""
        if self.session is None or self.spec is None or self.args is None or self.digest is None:
            raise StageOrderError("a stage ran before the call was authenticated and resolved")
        return self.spec, self.session


@dataclass(frozen=True, slots=True)
class ChainSettings:
    max_argument_bytes: int
    reads_fail_closed: bool
    fsync_reads: bool = True  # False: a read answers once its record is written, before its fsync ends


class GuardChain:
    def __init__(
        self,
        *,
        catalogue: Catalogue,
        backend: SupportBackend,
        state: StateStore,
        policies: PolicySource,
        redactor: Redactor,
        audit: AuditSink,
        settings: ChainSettings,
        fingerprints: FingerprintKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalogue = catalogue.freeze()
        self._backend = telemetry.observed(backend)
        self._state = state
        self._policies = policies
        self._redactor = redactor
        self._audit = audit
        self._settings = settings
        self._fingerprints = fingerprints
        self._clock = clock
        # Compiled once: the redaction maps of every tool's output (the policy narrows only the inputs).
        self._output_pii = {t.name: t.pii_classes() for t in catalogue}

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue as the policy served last shapes it (its enums and control arguments)."""
        return self._policies.served.stage.catalogue

    @property
    def policy_version(self) -> str:
        """The version served last (each call records the one that decided it)."""
        return self._policies.served.stage.version

    # -- the chain --------------------------------------------------------------------------

    @telemetry.traced_call
    async def call(self, credential: Session | Refusal, tool: str, arguments: dict[str, Any] | None) -> Outcome:
        call = Call(tool=tool, raw=dict(arguments or {}), request_id=uuid.uuid4().hex,
                    started=time.perf_counter(), now=int(self._clock()))
        try:
            call.policy = (await self._policies.current()).stage  # the published policy, fixed for this call
            call.session = self.authenticate(credential)                                    # 1
            call.spec, call.args = self.resolve(call)                                        # 2
            await self.authorize(call)                                                       # 3
            call.verdict = await call.policy.decide(call, self._backend, partial(self.intend, call))  # 4
            await self.confirm(call)                                                         # 5
            outcome = await self.idempotent(call)                                            # 6, 7, 8
        except DeskgateError as exc:
            outcome = Outcome.from_error(exc)
        except Exception:
            # Never a stack trace or exception text to the caller: it may carry data.
            logger.exception("internal error in tool %s (request %s)", call.spec.name if call.spec else "?",
                             call.request_id)
            outcome = Outcome(status=Status.ERROR, code="internal_error",
                              reason=f"internal error; quote request {call.request_id} to the operator",
                              next_step="Use escalate_to_human, quoting the request id of the reason.")
        if call.executed and outcome.status is not Status.OK:
            outcome = _ran_anyway(call, outcome)  # no stage refuses a call after its side effect
        if isinstance(credential, Refusal):
            return outcome  # audited once, by the authenticator that refused it (`refusal_record`)
        await self._settle(call, outcome)
        return await self.audit(call, outcome)                                               # 9

    async def visible_tools(self, credential: Session | Refusal) -> list[ToolSpec]:
        """What `tools/list` shows: only the tools this session's scopes allow and the policy offers it (a
        refusal raises its error)."""
        policy = (await self._policies.current()).stage
        session = self.authenticate(credential)
        return [spec for spec in policy.catalogue.visible_to(session.scopes) if policy.offers(spec, session)]

    # -- 1. authenticate ----------------------------------------------------------------------

    @telemetry.traced_stage("authenticate")
    def authenticate(self, credential: Session | Refusal) -> Session:
        """The session of this call. Every transport authenticates before the chain, through the one
        `Authenticator.admit` (scopes/authenticator.py), and hands over its answer: a session, or a
        refusal (already audited) whose error becomes this call's answer."""
        if isinstance(credential, Refusal):
            raise credential.error
        return credential

    # -- 2. resolve ---------------------------------------------------------------------------

    @telemetry.traced_stage("resolve")
    def resolve(self, call: Call) -> tuple[ToolSpec, BaseModel]:
        if call.session is None:
            raise StageOrderError("resolve ran before authenticate")
        spec = call.stage().catalogue.get(call.tool)
        # An unknown tool, a tool outside the session's scopes and one the policy does not offer this session
        # (switched off, a write of a read-only deployment, outside its rollout) get the same answer.
        if spec is None or not call.session.has_scope(spec.scope) or not call.stage().offers(spec, call.session):
            raise DeniedError("no such tool for this session", code="unknown_tool")
        call.spec = spec
        if len(json.dumps(call.raw, ensure_ascii=False).encode()) > self._settings.max_argument_bytes:
            raise InvalidArguments("arguments are too large", code="arguments_too_large")
        try:
            args = spec.input_model.model_validate(call.raw)
        except ValidationError as exc:
            # Declared field names and pydantic's messages only (they describe the rule, never carry the
            # input); the rejected values and the names of undeclared arguments are the caller's, maybe
            # personal, data. Redacted all the same.
            problems = sorted({f"{_where(e['loc'], e['type']) or 'arguments'}: {e['msg'][:160]}"
                               for e in exc.errors(include_input=False, include_url=False)})
            raise InvalidArguments(redact_text("invalid arguments: " + "; ".join(problems[:10]))) from None
        call.meaning = normalised(args)
        call.digest = argument_digest(call.meaning)
        key = _field(args, "idempotency_key")
        if key is not None:
            # Scoped to the session and the tool: one agent's key never collides with another's.
            call.idempotency_scope = hashlib.sha256(f"{call.session.sid}\x00{call.tool}\x00{key}".encode()).hexdigest()
        return spec, args

    # -- 3. authorize -------------------------------------------------------------------------

    @telemetry.traced_stage("authorize")
    async def authorize(self, call: Call) -> None:
        _, session = call.resolved()
        amount = _field(call.args, "amount")
        if session.max_refund is not None and isinstance(amount, Decimal) and amount > session.max_refund:
            raise DeniedError("amount is above this session's limit", code="amount_cap")
        call.target = await self._acted_on(call)
        if session.customer is None and session.ticket is None:
            await self._parties_established(call, None)
            return
        allowed = call.allowed_customer = await self._bound_customer(session)
        # Everything the call names, and everything its result would name, before anything runs:
        # a check a result fails after execution would come too late to refuse.
        for kind, object_id in self._named_objects(call):
            if kind == "ticket_id" and session.ticket is not None and object_id != session.ticket:
                raise DeniedError(_OUTSIDE, code="binding")
            # Unknown and foreign objects look the same to a bound session: no existence oracle.
            if allowed not in await self._owners(kind, object_id):
                raise DeniedError(_OUTSIDE, code="binding")
            if kind in _RESULT_OWNERS:
                continue
            customer = await self._backend.customer_for(kind, object_id)
            account = await self._backend.account_for(kind, object_id)
            if (customer is not None and customer != allowed) or (
                    account is not None and allowed not in await self._owners("account_id", account)):
                raise DeniedError(_OUTSIDE, code="binding")
        await self._parties_established(call, allowed)

    async def _parties_established(self, call: Call, bound: str | None) -> None:
        """A party the call acts for (the requester) is the session's bound customer or one whose identity
        `verify_identity` confirmed in this session: an agent's say-so never makes someone the requester."""
        _, session = call.resolved()
        for name in NAMED_PARTIES:
            party = _field(call.args, name)
            if party is None or party == bound or await self._state.verifications.is_verified(session.sid, party):
                continue
            raise DeniedError(f"the {name.removesuffix('_id')} is neither this session's customer nor verified in "
                              f"this session: call verify_identity with customer_id {party} first, then repeat "
                              "this call", code=f"{name.removesuffix('_id')}_unverified")

    def _named_objects(self, call: Call) -> Iterator[tuple[ObjectKind, str]]:
        spec, _ = call.resolved()
        for name in spec.object_arguments():
            object_id = _field(call.args, name)
            if object_id is not None:
                yield _OBJECT_KINDS[name], object_id
        for name, kind in NAMED_PARTIES.items():
            object_id = _field(call.args, name)
            if object_id is not None:
                yield kind, object_id

    async def _owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        try:
            return await self._backend.owners(kind, object_id)
        except NotFound:
            return frozenset()

    async def _acted_on(self, call: Call) -> RecordedAction | None:
        """The recorded action a write names (`undo_action`), if the session may act on it: one it (or,
        per policy, its subject) started, unless it holds the supervisor scope - and only with the scope
        of the tool that made it. Another session's action answers exactly like an unknown one."""
        spec, session = call.resolved()
        action_id = _field(call.args, "action_id")
        if spec.read_only or action_id is None:
            return None
        recorded = await self._state.actions.get(action_id)
        if recorded is None or not call.stage().actions.allows(session, recorded.sid, recorded.sub):
            raise NotFound(f"action {action_id} not found")
        original = self._catalogue.get(recorded.tool)
        if original is None or not session.has_scope(original.scope):
            raise DeniedError(f"acting on this action needs the scope of {recorded.tool}", code="scope")
        return recorded

    async def _bound_customer(self, session: Session) -> str:
        if session.customer is not None:
            return session.customer
        customer = None if session.ticket is None else await self._backend.customer_for("ticket_id", session.ticket)
        if customer is None:
            raise DeniedError("the session's ticket does not exist", code="binding")
        return customer

    # -- 5. confirm ---------------------------------------------------------------------------

    @telemetry.traced_stage("confirm")
    async def confirm(self, call: Call) -> None:
        if call.verdict is None or not call.verdict.needs_confirmation:
            return
        token = _field(call.args, "confirmation_token")
        finished = self._replay_allowed(call)
        if token is None:
            if await finished():
                return  # a retry of a keyed call that ran: stage 6 answers its first result, not a new preview
            # raises ConfirmationRequired
            await call.stage().request_confirmation(call, self._context(call), partial(self.intend, call))
            return
        call.replayed = await call.stage().redeem_confirmation(call, token, finished)

    def _replay_allowed(self, call: Call) -> Callable[[], Awaitable[bool]]:
        """A redeemed token may come back only as the retry of a finished idempotent call."""

        async def finished() -> bool:
            key = call.idempotency_scope
            return key is not None and await self._state.idempotency.is_done(key, call.digest or "")

        return finished

    # -- intent: before every side effect -------------------------------------------------------

    async def intend(self, call: Call, effect: Effect) -> None:
        """Make a durable record that `call` is about to cause `effect`, before it does: a crash between
        the effect and the call's own record (stage 9) then still leaves a trace of it."""
        with telemetry.stage("audit"):
            seq = await self._audit.append({**self._record(call, kind="intent"), "effect": effect})
        if call.intent_seq is None:
            call.intent_seq = seq

    # -- 6. idempotency -----------------------------------------------------------------------

    async def idempotent(self, call: Call) -> Outcome:
        key = call.idempotency_scope
        if key is None:
            return await self.execute_and_redact(call)
        with telemetry.stage("idempotency"):
            state, stored = await self._state.idempotency.claim(key, call.digest or "", call.now)
        if state == "conflict":
            raise IdempotencyConflict("this idempotency key was used with other arguments")
        if state == "in_progress":
            raise IdempotencyConflict("a call with this idempotency key is still running; retry later",
                                      code="idempotency_in_progress")
        if state == "done":
            if stored is None:  # never run a keyed call twice: without its first result, refuse
                raise StoreUnavailable("the first result of this idempotency key could not be read")
            call.idempotent_replay = True
            return Outcome.model_validate(stored)
        try:
            outcome = await self.execute_and_redact(call)
        except BaseException:
            if not call.executed:
                await self._state.idempotency.release(key)  # nothing happened: a retry may run it
            else:
                # It ran but its answer failed after: a retry must not run it twice, and learns it ran.
                await self._state.idempotency.complete(key, _ran_anyway(call, None).wire())
            raise
        await self._state.idempotency.complete(key, outcome.wire())
        return outcome

    # -- 7. execute and 8. redact -------------------------------------------------------------

    async def execute_and_redact(self, call: Call) -> Outcome:
        spec, session = call.resolved()
        if not spec.read_only:
            await self.intend(call, "tool")  # durable before the side effect
        try:
            with telemetry.stage("execute"):
                result = await spec.handler(self._context(call), call.args)                 # 7
        except NotFound as exc:
            # To a bound session a lookup that finds nothing answers like one that finds another's object.
            if spec.read_only and call.allowed_customer is not None and exc.code == NotFound.code:
                raise DeniedError(_OUTSIDE, code="binding") from None
            raise
        call.executed = not spec.read_only  # a side effect ran: from here on nothing may refuse the call
        data = result.model_dump(mode="json")
        call.result_digest = _digest(data)
        if spec.money:
            call.currency = data.get("currency")
        if not spec.read_only:
            await self._record_owner(call, data)
        if not await self._within_binding(call, data):
            # A read refuses (like an unknown object); an executed write is answered as executed anyway.
            raise DeniedError(_OUTSIDE, code="binding")
        # A write's answer shows the personal data the agent itself gave in this call (it can confirm what it
        # wrote); the same data stays masked in every other answer.
        supplied = None if spec.read_only else supplied_values(
            call.args.model_dump(mode="json") if call.args is not None else {}, spec.input_pii_classes())
        with telemetry.stage("redact"):
            visible = self._redactor.redact_output(data, self._output_pii[spec.name], session.scopes,  # 8
                                                   supplied=supplied)
        return Outcome(status=Status.OK, data=visible)

    async def _record_owner(self, call: Call, data: dict[str, Any]) -> None:
        """Who started the actions and hand-offs a write created: deskgate's own record (the backend
        knows nothing of sessions), read by get_action_status and undo_action. A failure leaves them
        owned by nobody - visible to no one but a supervisor - and never refuses the executed call."""
        spec, session = call.resolved()
        try:
            for name in ("action_id", "handoff_id"):
                if isinstance(data.get(name), str):
                    await self._state.actions.record(RecordedAction(
                        data[name], spec.name, session.sid, session.sub, call.request_id,
                        _field(call.args, "amount"), call.now))
        except DeskgateError as exc:
            logger.error("could not record the owner of an action (request %s): %s", call.request_id, exc.reason)

    async def _within_binding(self, call: Call, data: Any) -> bool:
        """A bound session sees only its own customer and the accounts it is a member of."""
        allowed = call.allowed_customer
        if allowed is None:
            return True
        for kind, value in _owner_fields(data):
            mine = value == allowed if kind == "customer_id" else allowed in await self._owners(kind, value)
            if not mine:
                return False
        return True

    async def _settle(self, call: Call, outcome: Outcome) -> None:
        """Commit or release what stage 4 reserved for the call (by whether its side effect ran), and close
        the approval it claimed with its answer - in one place, whatever stopped or finished it."""
        if call.policy is None:
            return
        try:
            await call.policy.settle(call, ok=outcome.status == Status.OK, result=outcome.wire())
        except DeskgateError as exc:
            logger.error("could not settle a call (request %s): %s", call.request_id, exc.reason)

    def _context(self, call: Call) -> ToolContext:
        _, session = call.resolved()
        policy = call.stage()
        return ToolContext(backend=self._backend, session=session, state=self._state,
                           request_id=call.request_id, now=call.now,
                           policy_view=lambda: policy.view_for(session), mask_text=redact_text,
                           undo_windows=policy.undo_windows,
                           may_see=lambda sid, sub: policy.actions.allows(session, sid, sub),
                           intent_seq=call.intent_seq, idempotency_scope=call.idempotency_scope)

    # -- 9. audit -----------------------------------------------------------------------------

    @telemetry.audit_stage
    async def audit(self, call: Call, outcome: Outcome) -> Outcome:
        kind = "outcome" if call.intent_seq is not None else "call"
        # A write tool's record is fsync'd before its answer whatever happened to it; a read's may
        # answer once written (see `AuditSection.fsync_reads`).
        durable = self._settings.fsync_reads or (call.spec is not None and not call.spec.read_only)
        try:
            record = self._record(call, kind=kind, outcome=outcome)
            outcome.audit_seq = await self._audit.append(record, durable=durable)
        except AuditUnavailable as exc:
            logger.error("audit log unavailable: %s (request %s)", exc.reason, call.request_id)
            intended = call.intent_seq is not None
            if intended or self._settings.reads_fail_closed or call.spec is None or not call.spec.read_only:
                # Said as it is: it ran (do not repeat it), something may have happened, or nothing did.
                if call.executed:
                    reason = "the action ran but its audit record could not be written; do not repeat it"
                    step = "Do not repeat the call; tell the customer it was done and use escalate_to_human."
                elif intended:
                    reason = "an effect of this call may have happened but its audit record could not be written"
                    step = "Do not repeat the call; use escalate_to_human so a person checks what happened."
                else:
                    reason = "the audit log is unavailable; nothing was done"
                    step = "Retry in a few minutes; if it keeps failing, use escalate_to_human."
                return Outcome(status=Status.ERROR, code="audit_unavailable", reason=reason, next_step=step)
        return outcome

    def _audited_arguments(self, call: Call) -> dict[str, Any]:
        """The arguments as the audit record keeps them: validated ones redacted by their declared PII
        classes; for a call whose arguments failed validation only their names (their values' types are
        unknown, so no declaration can be trusted to mask them) - a name the tool does not declare is the
        caller's choice, so only its keyed fingerprint."""
        if call.spec is None:
            return {}
        if call.args is None:
            declared = call.spec.input_model.model_fields
            return {"arg_names": sorted({k if k in declared else self._fingerprint(str(k)) for k in call.raw})[:50]}
        validated = call.args.model_dump(mode="json", exclude_none=True)
        # The served input model's own map: a reload may add control arguments (secrets) to a tool.
        return {"args": self._redactor.redact_for_audit(validated, call.spec.input_pii_classes())}

    def _record(self, call: Call, *, kind: str, outcome: Outcome | None = None) -> dict[str, Any]:
        session, spec = call.session, call.spec
        # A name outside the catalogue is the caller's choice: kept only as a keyed fingerprint.
        known = spec is not None or self._catalogue.get(call.tool) is not None
        arguments = self._audited_arguments(call)
        record: dict[str, Any] = {
            "kind": kind,
            "request_id": call.request_id,
            "tool": call.tool if known else "(unknown)",
            "tool_fp": None if known else self._fingerprint(call.tool),
            "sub": session.sub if session else None,
            "sid": session.sid if session else None,
            "jti": session.jti if session else None,
            # The policy that decided the call; a call refused before one was chosen names the one served last.
            "policy_version": (call.policy or self._policies.served.stage).version,
            "manifest_hash": (call.policy or self._policies.served.stage).manifest_hash,
            "args_digest": call.digest,
            # The ticket the call concerns: the one it names (validated), else the one the session is bound to.
            "ticket_id": _field(call.args, "ticket_id") or (session.ticket if session else None),
            **arguments,
        }
        if call.verdict is not None:
            record["decision"] = call.verdict.audit()
            if kind == "intent":
                record["decision"].pop("events", None)  # a breaker trip is audited once: in the call's record
        if spec is not None and spec.money and call.args is not None:
            currency = call.currency or (call.verdict.decision.currency if call.verdict else None)
            record["money"] = {"amount": str(getattr(call.args, "amount", "")), "tool": spec.name,
                               "currency": currency}
        if outcome is not None:
            record.update(status=outcome.status.value, code=outcome.code, reason=outcome.reason,
                          result_digest=call.result_digest, replayed=call.idempotent_replay or None,
                          latency_ms=round((time.perf_counter() - call.started) * 1000, 3))
            for extra in ("approval_id", "escalation_id"):
                if getattr(outcome, extra):
                    record[extra] = getattr(outcome, extra)
            if outcome.confirmation_token:
                record["confirmation_issued"] = True
            if call.executed and spec is not None and spec.customer_output is not None:
                # What the customer now reads, as the audit redaction keeps it (the text posted was masked alike).
                record["final_customer_output"] = arguments["args"].get(spec.customer_output)
        return {k: v for k, v in record.items() if v is not None}

    def _fingerprint(self, chosen: str) -> str:
        return self._fingerprints.fingerprint(PiiClass.FREE_TEXT, chosen)


def _ran_anyway(call: Call, refusal: Outcome | None) -> Outcome:
    """The answer of a call whose side effect ran but whose result cannot be shown: executed, data withheld
    (never a refusal: the caller must not retry what already happened)."""
    why = f" ({refusal.reason})" if refusal is not None and refusal.code == "binding" else ""
    logger.error("request %s ran; its answer is withheld%s", call.request_id, f": {refusal.code}" if refusal else "")
    return Outcome(status=Status.OK, code="result_withheld",
                   reason=f"The action ran; its result is withheld{why}. Do not repeat it.")


def _where(loc: tuple[int | str, ...], error_type: str) -> str:
    """An argument's path for an error message; an undeclared argument's name is the caller's, never shown."""
    parts = [str(p) for p in loc]
    if error_type == "extra_forbidden" and parts:
        parts[-1] = "(undeclared argument)"
    return ".".join(parts)


def _owner_fields(data: Any) -> Iterator[tuple[ObjectKind, str]]:
    """Every (customer_id | account_id, value) a result names, at any depth."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k in _RESULT_OWNERS and isinstance(v, str):
                yield ("customer_id" if k == "customer_id" else "account_id"), v
            else:
                yield from _owner_fields(v)
    elif isinstance(data, list):
        for v in data:
            yield from _owner_fields(v)


def _field(args: BaseModel | None, name: str) -> Any:
    """A declared input field's value, None if the tool has no such field (or no arguments were parsed)."""
    return getattr(args, name, None)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


__all__ = ["CONTROL_ARGUMENTS", "Call", "ChainSettings", "GuardChain"]
