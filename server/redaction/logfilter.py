"""No log line leaves the process with PII or a secret in it, whoever logs it and whatever writes it.

    install()           every log record the process creates is masked as it is made (the record
                        factory): deskgate's, the MCP SDK's, starlette's and uvicorn's records alike,
                        written by any handler - uvicorn's own handlers included, which are not the
                        root logger's and would never see a handler filter. Text that came from an
                        HTTP header (an `Invalid Host header: ...` warning) is masked like any other.
    RedactingFilter     the same masking as a handler filter, for the `extra=` fields that the logging
                        module sets on a record only after the factory made it. Attach it to handlers:

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())

Masking formats the message with its arguments, masks it (`redact_text`) and drops the arguments, so
a formatter cannot put the raw values back. Tracebacks, stack text and str-valued `extra=` fields are
masked too. If masking itself fails the record is kept but its text is withheld: a log line is never
worth a leak.
"""

from __future__ import annotations

import logging
from typing import Any

from deskgate.server.redaction.redactor import redact_text

WITHHELD = "[log record withheld: it could not be redacted]"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def redact_record(record: logging.LogRecord) -> None:
    """Mask `record` in place (message, arguments, traceback, stack, str extras); withhold it on failure."""
    try:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact_text(value))
    except Exception:  # fail closed: withhold the text rather than log it raw
        record.msg, record.args = WITHHELD, None
        record.exc_info = record.exc_text = record.stack_info = None


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingFactory:
    """The record factory `install` sets: the one before it, then `redact_record`."""

    def __init__(self, made_by: Any) -> None:
        self.made_by = made_by

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.made_by(*args, **kwargs)
        redact_record(record)
        return record


def install() -> None:
    """Mask every log record this process makes from now on (idempotent)."""
    if not isinstance(logging.getLogRecordFactory(), _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(logging.getLogRecordFactory()))
