"""Stages 4 and 5 of the guard chain: what the policy engine decided, turned into what happens.

    automate   the call goes on (to stage 5 when it is irreversible)
    assist     a human approver must approve this exact call: `pending_approval`; once approved,
               repeating the same call claims the approval (exactly once) and runs it
    escalate   nothing is done; a hand-off to a human is created: `escalated`
    deny       `denied`, with the engine's reason

The engine (`server/policy/engine.py`) decides; confirmations (`server/policy/confirmation.py`)
and approvals (`server/policy/approvals.py`) keep their own invariants. This module only connects
them to a `Call`, so the chain reads the same whatever the policy file says.

Every side effect these stages cause - the escalation hand-off (which also changes the ticket), the
approval row, the customer's one-time code email - MUST be preceded by the chain's durable intent
record (`before(effect)`), exactly as a tool's execution is: a crash between the effect and the
call's record then still leaves a record that says the effect may have happened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.session import Session
from deskgate.server import telemetry
from deskgate.server.errors import (
    ConfirmationRequired,
    DeniedError,
    DeskgateError,
    EscalatedError,
    PendingApproval,
)
from deskgate.server.policy.approvals import Approval, Approvals
from deskgate.server.policy.confirmation import Binding, Confirmations
from deskgate.server.policy.engine import Decision, PolicyEngine
from deskgate.server.policy.model import ActionRules, Policy
from deskgate.server.store.state import RecordedAction, StateStore
from deskgate.tools.spec import Catalogue, ToolSpec

if TYPE_CHECKING:
    from deskgate.server.chain import Call
    from deskgate.tools.backend.base import SupportBackend
    from deskgate.tools.context import ToolContext

logger = logging.getLogger("deskgate.policy")

# What a call may cause besides its answer; each is announced by a durable intent record first.
Effect = Literal["tool", "handoff", "approval", "customer_code"]
BeforeEffect = Callable[[Effect], Awaitable[None]]


@dataclass(slots=True)
class Verdict:
    """Stage 4's answer for a call that goes on: the decision, and the approval it runs under."""

    decision: Decision
    approval: Approval | None = None
    reservation: str | None = None  # the request id the call's counts are held under, until `settle`

    @property
    def needs_confirmation(self) -> bool:
        # An approved call was confirmed by its approver; a read never needs one.
        return self.approval is None and self.decision.needs_confirmation

    def audit(self) -> dict[str, Any]:
        record = self.decision.audit()
        if self.approval is not None:
            record["approval_id"] = self.approval.id
            record["approved_by"] = list(self.approval.approvers)
        return record


class PolicyStage:
    def __init__(self, policy: Policy, *, catalogue: Catalogue, state: StateStore, approvals: Approvals,
                 keys: SigningKeys, issuer: str, manifest_hash: str) -> None:
        self._engine = PolicyEngine(policy, list(catalogue), state)
        self._catalogue = catalogue
        self._policy = policy
        self._state = state
        self._approvals = approvals
        self._keys = keys
        self._issuer = issuer
        self._manifest_hash = manifest_hash
        self._redemptions = state.redemptions
        self._undo_windows = {name: rules.undo_window for name, rules in policy.tools.items()
                              if rules.undo_window is not None}
        self._confirmations_for: tuple[tuple[str, ...], Confirmations] | None = None

    @property
    def version(self) -> str:
        return self._engine.version

    @property
    def manifest_hash(self) -> str:
        return self._manifest_hash

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue as this policy serves it (its enums and control arguments)."""
        return self._catalogue

    def offers(self, spec: ToolSpec, session: Session) -> bool:
        """Is the tool offered to this session (not switched off, not a write of a read-only deployment,
        within its rollout)? A tool that is not answers exactly like an unknown one."""
        return self._policy.offers(spec, session)

    def view_for(self, session: Session) -> dict[str, Any]:
        view = self._engine.view_for(session)
        view["tools"] = {name: rules for name, rules in view["tools"].items()
                         if (spec := self._catalogue.get(name)) is not None and self.offers(spec, session)}
        return view

    @property
    def undo_windows(self) -> dict[str, int]:
        return self._undo_windows

    @property
    def actions(self) -> ActionRules:
        """Who may see and undo an action besides the session that started it."""
        return self._policy.actions

    # -- 4. policy ----------------------------------------------------------------------------

    @telemetry.traced_stage("policy")
    async def decide(self, call: Call, backend: SupportBackend, before: BeforeEffect) -> Verdict:
        spec, session = call.resolved()
        now = call.now
        if not spec.read_only and await self._replays_finished_call(call):
            call.verdict = Verdict(self._engine.replay(spec.name))  # nothing counts, no limit refuses
            return call.verdict
        runaway = None if spec.read_only else await self._engine.count_attempt(session, now)
        if runaway is not None and await self._approvals.open_for(self._binding(call), now, approved=True) is None:
            call.verdict = Verdict(self._engine.refusal(spec.name, "attempt_limited", runaway))
            raise DeniedError(runaway, code="attempt_limited")
        decision = await self._engine.decide(spec, session, call.raw, amount=getattr(call.args, "amount", None),
                                             backend=backend, now=now, request_id=call.request_id,
                                             target=call.target)
        call.verdict = Verdict(decision, reservation=decision.reservation)  # audited even when refused
        if decision.tier == "deny":
            raise DeniedError(decision.reason or "refused by policy", code=decision.code)
        if runaway is not None and decision.tier != "assist":  # only the approved call goes on (settle releases)
            raise DeniedError(runaway, code="attempt_limited")
        if decision.tier == "escalate":
            customer = await self._engine.customer_of(spec, session, call.raw, backend)
            await before("handoff")
            handoff = await backend.create_handoff(
                customer_id=customer, ticket_id=getattr(call.args, "ticket_id", None),
                summary=f"Policy escalated {spec.name}: {decision.reason}"[:500], tried=f"{spec.name} by {session.sub}",
                proposed_action=f"Review and, if right, perform {spec.name} ({call.digest})", priority="high",
                source="policy", actor=session.sub, now=now)
            await self._record_owner(RecordedAction(handoff, spec.name, session.sid, session.sub, call.request_id,
                                                    decision.amount, now))
            raise EscalatedError(decision.reason, code=decision.code, escalation_id=handoff)
        if decision.tier == "assist":
            approval = await self._approved_or_pending(call, decision, backend, before)
            call.verdict.approval = await self._approvals.claim(
                approval.id, sid=session.sid, policy_version=self.version, manifest_hash=self._manifest_hash,
                now=now, call=(spec.name, call.digest or ""))
            # Only the claimer counts, atomically against the session cap: two approved calls repeated at
            # once never both pass it, and no limit refuses what a human approved. Refused, the claimed
            # approval ends failed (the chain settles).
            call.verdict.reservation = await self._engine.reserve_approved(call.request_id, session, decision, now)
        return call.verdict

    async def _replays_finished_call(self, call: Call) -> bool:
        """The retry of a keyed write that finished: stage 6 will answer its stored result."""
        return call.idempotency_scope is not None and await self._state.idempotency.is_done(
            call.idempotency_scope, call.digest or "")

    async def _record_owner(self, action: RecordedAction) -> None:
        """Who started the hand-off; a failure leaves it visible to supervisors only, and does not hide
        that it happened (the answer still names it)."""
        try:
            await self._state.actions.record(action)
        except DeskgateError as exc:
            logger.error("could not record the owner of %s: %s", action.action_id, exc.reason)

    async def _approved_or_pending(self, call: Call, decision: Decision, backend: SupportBackend,
                                   before: BeforeEffect) -> Approval:
        spec, session = call.resolved()
        approvals = self._policy.approvals
        two_person = (approvals.two_person_above is not None and decision.amount is not None
                      and decision.amount > approvals.two_person_above)
        limited = decision.limited
        if limited is not None:
            # A full limit files no new request; an approval already asked for still answers as it stands.
            found = await self._approvals.open_for(self._binding(call), call.now)
            if found is None:
                raise DeniedError(limited, code="rate_limited")
            return self._approved(found, decision, call.now)
        customer = await self._engine.customer_of(spec, session, call.raw, backend)
        await before("approval")
        approval = await self._approvals.create(
            self._binding(call), call.meaning or {}, customer_id=customer,
            summary=f"{spec.title}: {decision.reason}"[:500], now=call.now, ttl=approvals.ttl,
            required=2 if two_person else 1)
        return self._approved(approval, decision, call.now)

    @staticmethod
    def _approved(approval: Approval, decision: Decision, now: int) -> Approval:
        if approval.state_at(now) != "approved":
            raise PendingApproval(decision.reason, code=decision.code, approval_id=approval.id)
        return approval

    async def settle(self, call: Call, *, ok: bool, result: dict[str, Any]) -> None:
        """The one place a call's counts and its approval are closed, whatever stopped or finished it: what
        it reserved is committed if its side effect ran and released if not, and the approval it ran under
        ends done or failed with its answer."""
        verdict = call.verdict
        if verdict is None:
            return
        if call.executed:
            await self._engine.commit(verdict.reservation)
        else:
            await self._engine.release(verdict.reservation)
        verdict.reservation = None
        if verdict.approval is not None:
            await self._approvals.finish(verdict.approval.id, ok=ok, result=result)

    # -- 5. confirm ---------------------------------------------------------------------------

    def _confirmations(self) -> Confirmations:
        """Built once per key set (a rotation, seen through the keyset file, rebuilds it)."""
        records = self._keys.records()
        kids = tuple(r.kid for r in records)
        if self._confirmations_for is None or self._confirmations_for[0] != kids:
            kid, key = self._keys.signing_key()
            verify = {r.kid: r.public_key() for r in records}
            self._confirmations_for = (kids, Confirmations(
                signing_key=key, kid=kid, verify_keys=verify, redemptions=self._redemptions,
                issuer=self._issuer, ttl=self._policy.confirmation.ttl))
        return self._confirmations_for[1]

    async def request_confirmation(self, call: Call, ctx: ToolContext, before: BeforeEffect) -> None:
        spec, session = call.resolved()
        preview = await spec.preview(ctx, call.args) if spec.preview else f"Run {spec.title}."
        confirmations = self._confirmations()
        if call.verdict is not None and call.verdict.decision.confirmation == "customer":
            customer = await self._engine.customer_of(spec, session, call.raw, ctx.backend)
            if customer is None:
                raise DeniedError("no customer to confirm with for this call", code="customer_unknown")
            # The code's lifetime fits the channel of the session's ticket (never an argument the agent picks).
            channel = None if session.ticket is None else await ctx.backend.ticket_channel(session.ticket)
            ttl = self._policy.confirmation.customer_code.ttl_for(channel)
            await before("customer_code")
            issued = await confirmations.issue_for_customer(self._binding(call), backend=ctx.backend,
                                                            customer_id=customer, preview=preview, now=call.now,
                                                            ttl=ttl)
            reason = "The customer must confirm: a one-time code was sent to their contact on file."
            step = "Repeat the same call with confirmation_token and the customer_code the customer reads back."
        else:
            issued = confirmations.issue(self._binding(call), now=call.now)
            reason = "Irreversible: nothing is done until the person you act for agrees to the preview."
            step = None  # the class's: show the preview, then repeat with confirmation_token
        raise ConfirmationRequired(reason, next_step=step, preview=preview, confirmation_token=issued.token)

    async def redeem_confirmation(self, call: Call, token: str, replay_allowed: Any) -> bool:
        return await self._confirmations().redeem(
            token, self._binding(call), now=call.now, customer_code=getattr(call.args, "customer_code", None),
            replay_allowed=replay_allowed)

    def _binding(self, call: Call) -> Binding:
        spec, session = call.resolved()
        return Binding(sid=session.sid, sub=session.sub, tool=spec.name, args_digest=call.digest or "",
                       manifest_hash=self._manifest_hash, policy_version=self.version, ticket=session.ticket,
                       arguments=call.meaning or {})
