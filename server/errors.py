"""Every error deskgate raises, as one tree.

    DeskgateError                     base; `status` and a `reason` safe to show a caller
    ├── ConfigError                   bad config file: names file and line; stops start-up
    ├── AuthenticationError           stage 1: no/invalid/expired/revoked token (HTTP 401)
    ├── DeniedError                   stages 2-4: unknown tool, missing scope, binding, cap, gate
    ├── EscalatedError                stage 4: policy handed the call to a human; nothing done
    ├── PendingApproval               stage 4: an approver must decide; carries the approval id
    ├── ConfirmationRequired          stage 5: nothing done yet; carries the preview and the token
    ├── ConfirmationError             stage 5: bad, replayed, expired or mismatched confirmation
    ├── IdempotencyConflict           stage 6: same key, other arguments
    ├── InvalidArguments              arguments fail the tool's input model (values never echoed)
    ├── DomainError                   stage 7: the backend refused (unknown id, wrong state)
    ├── BackendUnavailable            stage 7: a support system timed out, failed, throttled or is
    │                                 cut off by its circuit breaker: fail closed, provider text never shown
    ├── StoreUnavailable              the state store cannot be read or written: fail closed
    ├── AuditUnavailable              the audit log cannot be made durable: fail closed
    ├── TokenRequestRefused           /oauth/token: the RFC 6749 / 8707 / 9396 `error` the client gets
    └── StageOrderError               a chain stage ran before one it depends on: a bug, refused

Rules: a failure in a phase surfaces as that phase's error, never a raw ValueError; a `reason`
never contains a token, a key or raw PII, because it is sent to the client and written to the
audit log. `diagnostics()` may say more, for the operator's terminal only.
"""

from __future__ import annotations

from typing import ClassVar

from deskgate.server.outcome import Status

# What to do next, by code, where the code says more than its class (`DeskgateError.next_step`).
_NEXT_STEPS = {
    "unknown_tool": "Use only the tools that tools/list shows this session.",
    "binding": "Act only on the customer this session is bound to, or use escalate_to_human.",
    "amount_cap": "Use escalate_to_human for an amount above this session's limit.",
    "session_cap": "Use escalate_to_human for an amount above this session's limit.",
    "rate_limited": "Wait as long as the reason says before trying again, or use escalate_to_human if the "
                    "customer is waiting.",
    "scope": "Use escalate_to_human: this session cannot act on it.",
    "customer_code_missing": "Repeat the same call with confirmation_token and the customer_code the customer "
                             "reads back.",
    "idempotency_in_progress": "Repeat the same call with the same idempotency_key in a moment to get its result.",
    "not_found": "Check the id with the customer or look it up (find_customer, list_orders, list_tickets).",
    "unknown_topic": "Call get_policy with a topic the reason lists, or without a topic.",
}


class DeskgateError(Exception):
    """Base of the tree. `reason` is what the caller and the audit log see: why, in one sentence; `next_step`
    what to do now, in one sentence (a code's own step, else its class's)."""

    status: ClassVar[Status] = Status.ERROR
    code: ClassVar[str] = "error"
    default_next_step: ClassVar[str] = "Retry in a few minutes; if it keeps failing, use escalate_to_human."

    def __init__(self, reason: str, *, code: str | None = None, next_step: str | None = None,
                 **extras: str) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class default
        self._next_step = next_step
        # Outcome fields this stop answers with (approval_id, preview, confirmation_token, ...).
        self.extras = extras

    @property
    def next_step(self) -> str:
        return self._next_step or _NEXT_STEPS.get(self.code) or self.default_next_step

    def diagnostics(self) -> str:
        """Longer text for an operator's terminal (never sent to an MCP client)."""
        return self.reason


class ConfigError(DeskgateError):
    code = "config_invalid"

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{reason}")
        self.file = file
        self.line = line


class AuthenticationError(DeskgateError):
    """Why exactly a token failed is in `code` (audited), never in what the caller is told."""

    status = Status.DENIED
    code = "invalid_token"
    default_next_step = "Ask an admin for a valid session token; no call works without one."


class DeniedError(DeskgateError):
    status = Status.DENIED
    code = "denied"
    default_next_step = ("Meet the condition the reason names first, or tell the customer it cannot be "
                         "done here and use escalate_to_human.")


class EscalatedError(DeskgateError):
    """Policy sends the call to a human: nothing was executed, a hand-off exists (`escalation_id`)."""

    status = Status.ESCALATED
    code = "escalated"
    default_next_step = "Tell the customer a specialist will take this over and they will hear back from a person."


class PendingApproval(DeskgateError):
    """Assist tier: nothing was executed; a human approver decides (`approval_id`)."""

    status = Status.PENDING_APPROVAL
    code = "pending_approval"
    default_next_step = ("Wait for the approver (get_action_status with the approval_id), then repeat "
                         "this exact call once.")


class ConfirmationRequired(DeskgateError):
    """First call of an irreversible action: nothing was executed (`preview`, `confirmation_token`)."""

    status = Status.CONFIRMATION_REQUIRED
    code = "confirmation_required"
    default_next_step = ("Show the preview to the person you act for, then repeat the same call with "
                         "confirmation_token.")


class ConfirmationError(DeskgateError):
    status = Status.DENIED
    code = "confirmation_invalid"
    default_next_step = "Make the call again without confirmation_token to get a new preview and token."


class IdempotencyConflict(DeskgateError):
    status = Status.DENIED
    code = "idempotency_conflict"
    default_next_step = "Use a new idempotency_key for a call with other arguments."


class InvalidArguments(DeskgateError):
    status = Status.ERROR
    code = "invalid_arguments"
    default_next_step = "Correct the arguments as the reason says and call again."


class DomainError(DeskgateError):
    """The support backend refused: unknown id, wrong state, amount above what is refundable."""

    status = Status.ERROR
    code = "domain_error"
    default_next_step = "Do not repeat the call unchanged; tell the customer what the reason says."


class NotFound(DomainError):
    code = "not_found"


class BackendUnavailable(DeskgateError):
    code = "backend_unavailable"
    default_next_step = "Retry in a few minutes, or use escalate_to_human if the customer is waiting."


class StoreUnavailable(DeskgateError):
    code = "store_unavailable"


class AuditUnavailable(DeskgateError):
    code = "audit_unavailable"


class TokenRequestRefused(DeskgateError):
    """The token endpoint refuses a request; nothing was issued.

    `error` is the registered OAuth error code the client is sent (`invalid_request`, `invalid_client`,
    `invalid_scope`, `invalid_target`, `invalid_authorization_details`, ...), `reason` its
    `error_description` (plain ASCII, never an echo of the request), and `code` the precise cause
    for the audit log.
    """

    status = Status.DENIED
    code = "token_request_refused"

    def __init__(self, error: str, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason, code=code or error)
        self.error = error


class StageOrderError(DeskgateError):
    """A stage of the guard chain ran before a stage it depends on (a bug): refused, never skipped."""

    code = "internal_error"
