"""The PII classes a field can declare, and what a session may see of each."""

from __future__ import annotations

from enum import StrEnum


class PiiClass(StrEnum):
    NONE = "none"              # declared not personal (ids, statuses, amounts shown as text)
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"        # postal address
    DOB = "dob"                # date of birth
    CARD = "card"              # payment card number (or its last four)
    IBAN = "iban"
    NATIONAL_ID = "national_id"
    IP = "ip"
    FREE_TEXT = "free_text"    # customer-written text: scanned by detectors, marked untrusted
    SECRET = "secret"  # noqa: S105 - a class name, not a password; never leaves the server in clear


class Visibility(StrEnum):
    HIDDEN = "hidden"
    MASKED = "masked"
    CLEAR = "clear"
