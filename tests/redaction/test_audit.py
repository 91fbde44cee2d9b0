"""What the audit log keeps: everything masked whatever the scopes, with keyed fingerprints to correlate."""

# ruff: noqa: RUF001 - full-width and other look-alike characters are the evasions under test

from __future__ import annotations

import json
import re
import secrets

import pytest

from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.fingerprint import FingerprintKey
from deskgate.server.redaction.policy import VisibilityPolicy
from deskgate.server.redaction.redactor import Redactor

RAW = {
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "token": "ghp_" + "Zx9" * 12,
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "iban": "DE89370400440532013000",
    "phone": "+44 7700 900123",
}
ARGUMENTS = {
    "customer_id": "C-1042",
    "reason_code": "duplicate",
    "note": (
        f"Customer {RAW['email']} says card {RAW['card']} was charged twice; "
        f"their dev pasted {RAW['token']} and {RAW['aws']}. IBAN {RAW['iban']}, phone {RAW['phone']}."
    ),
    "contacts": [{"email": "JANE.DOE@EXAMPLE.COM"}, {"email": "ｊａｎｅ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"}],
}
RESULT_MAP = {"email": PiiClass.EMAIL, "card_number": PiiClass.CARD, "body": PiiClass.FREE_TEXT}
FP = re.compile(r"fp:[0-9a-f]{16}")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(VisibilityPolicy.load(), FingerprintKey(secrets.token_bytes(32)))


def digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def test_audit_redaction_never_contains_a_raw_email_card_or_token(redactor):
    """No raw value, in any spelling, survives in the serialised audit record."""
    record = json.dumps(redactor.redact_for_audit(ARGUMENTS, {}), ensure_ascii=False)
    for value in RAW.values():
        assert value not in record
    assert digits(RAW["card"]) not in digits(record)
    assert "jane.doe@example.com" not in record.lower()
    assert "ｊａｎｅ" not in record


def test_audit_redaction_ignores_the_session_scopes(redactor):
    """Declared fields are masked even though a pii:contact session would see them in clear."""
    result = {"email": RAW["email"], "card_number": RAW["card"], "body": "call me"}
    audited = redactor.redact_for_audit(result, RESULT_MAP)
    assert audited["email"].startswith("j***@example.com fp:")
    assert audited["card_number"].startswith("•••• 1111 fp:")
    assert audited["body"] == "call me"  # no envelope: the audit log is not read by the agent


def test_the_same_value_gets_the_same_fingerprint_in_any_spelling(redactor):
    """Investigators can correlate: one email written three ways has one fingerprint."""
    audited = redactor.redact_for_audit(ARGUMENTS, {})
    prints = [FP.search(c["email"]).group() for c in audited["contacts"]]
    in_note = FP.findall(audited["note"])
    assert prints[0] == prints[1] == in_note[0]


def test_declared_fields_and_detected_values_share_fingerprints(redactor):
    """A card declared in a result and the same card detected in free text correlate."""
    declared = redactor.redact_for_audit({"card_number": RAW["card"]}, RESULT_MAP)["card_number"]
    detected = redactor.redact_for_audit({"note": f"paid with {RAW['card'].replace(' ', '-')}"}, {})["note"]
    assert FP.search(declared).group() == FP.search(detected).group()


def test_fingerprints_depend_on_the_key(redactor):
    """Another deployment's key gives other fingerprints: a fingerprint is not a plain hash."""
    other = Redactor(VisibilityPolicy.load(), FingerprintKey(secrets.token_bytes(32)))
    data = {"email": RAW["email"]}
    assert redactor.redact_for_audit(data, RESULT_MAP) != other.redact_for_audit(data, RESULT_MAP)


def test_secrets_and_national_ids_are_masked_without_a_fingerprint(redactor):
    """Only emails, phones, cards and IBANs are fingerprinted; a secret is reduced to its kind."""
    audited = redactor.redact_for_audit({"note": f"key {RAW['aws']} ssn 123-45-6789"}, {})
    assert audited["note"] == "key [secret:aws_access_key] ssn •••-••-6789"


def test_redact_text_masks_without_fingerprints(redactor):
    """Error reasons and log lines are masked, with no fingerprint to leak correlation to a client."""
    assert redactor.redact_text(f"no customer with email {RAW['email']}") == "no customer with email j***@example.com"
