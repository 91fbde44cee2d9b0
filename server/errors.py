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


class DeskgateError(Exception):
    """Base of the tree. `reason` is what the caller and the audit log see."""

    status: ClassVar[Status] = Status.ERROR
    code: ClassVar[str] = "error"

    def __init__(self, reason: str, *, code: str | None = None, **extras: str) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class default
        # Outcome fields this stop answers with (approval_id, preview, confirmation_token, ...).
        self.extras = extras

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


class DeniedError(DeskgateError):
    status = Status.DENIED
    code = "denied"


class EscalatedError(DeskgateError):
    """Policy sends the call to a human: nothing was executed, a hand-off exists (`escalation_id`)."""

    status = Status.ESCALATED
    code = "escalated"


class PendingApproval(DeskgateError):
    """Assist tier: nothing was executed; a human approver decides (`approval_id`)."""

    status = Status.PENDING_APPROVAL
    code = "pending_approval"


class ConfirmationRequired(DeskgateError):
    """First call of an irreversible action: nothing was executed (`preview`, `confirmation_token`)."""

    status = Status.CONFIRMATION_REQUIRED
    code = "confirmation_required"


class ConfirmationError(DeskgateError):
    status = Status.DENIED
    code = "confirmation_invalid"


class IdempotencyConflict(DeskgateError):
    status = Status.DENIED
    code = "idempotency_conflict"


class InvalidArguments(DeskgateError):
    status = Status.ERROR
    code = "invalid_arguments"


class DomainError(DeskgateError):
    """The support backend refused: unknown id, wrong state, amount above what is refundable."""

    status = Status.ERROR
    code = "domain_error"


class NotFound(DomainError):
    code = "not_found"


class BackendUnavailable(DeskgateError):
    code = "backend_unavailable"


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
