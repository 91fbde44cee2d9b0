"""Redaction: what of the PII and secrets in a result, an audit record or a log line may be seen.

    classes.py      the PII classes, visibilities and authors (declared by output fields)
    policy.py       visibility per class for a session's scopes (config/redaction.toml)
    fold.py         the evasion-proof view of a text, with offsets back to the original
    checks.py       Luhn, mod-97, SSN and NINO rules, calling codes
    detectors.py    the detectors over free text
    masks.py        what a masked value looks like
    envelope.py     text a customer or agent can write marked as data, with its author
    fingerprint.py  keyed HMAC fingerprints for the audit log, and their key
    redactor.py     `Redactor`: output, audit and text redaction
    logfilter.py    every log record masked as it is made (`install`), `RedactingFilter` for handlers
"""

from deskgate.server.redaction.classes import PiiClass, Visibility
from deskgate.server.redaction.detectors import Detection, detect
from deskgate.server.redaction.envelope import mark_untrusted
from deskgate.server.redaction.fingerprint import FingerprintKey
from deskgate.server.redaction.logfilter import RedactingFilter
from deskgate.server.redaction.policy import VisibilityPolicy
from deskgate.server.redaction.redactor import Redactor, redact_text

__all__ = [
    "Detection",
    "FingerprintKey",
    "PiiClass",
    "RedactingFilter",
    "Redactor",
    "Visibility",
    "VisibilityPolicy",
    "detect",
    "mark_untrusted",
    "redact_text",
]
