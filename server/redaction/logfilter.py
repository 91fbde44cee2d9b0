"""`RedactingFilter`: no log line leaves the process with PII or a secret in it.

Attach it to every handler (filters on a logger do not see records propagated from its children):

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())

The filter formats the message with its arguments, masks it (`redact_text`) and drops the
arguments, so a formatter cannot put the raw values back. Tracebacks, stack text and str-valued
`extra=` fields are masked too. If masking itself fails the record is kept but its text is
withheld: a log line is never worth a leak.
"""

from __future__ import annotations

import logging

from deskgate.server.redaction.redactor import redact_text

WITHHELD = "[log record withheld: it could not be redacted]"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
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
        return True
