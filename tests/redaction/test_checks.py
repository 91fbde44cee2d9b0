"""Checksums and numbering rules: a number is only a card, an IBAN or an SSN if its own rules say so."""

from __future__ import annotations

import pytest

from deskgate.server.redaction.checks import card_valid, country_code, iban_valid, luhn_valid, ssn_valid


@pytest.mark.parametrize("number", ["4111111111111111", "4242424242424242", "378282246310005", "5555555555554444",
                                    "6011111111111117", "3566002020360505", "2223003122003222", "36227206271667"])
def test_real_test_card_numbers_are_valid(number):
    """Published scheme test numbers pass Luhn and the issuer-range check."""
    assert card_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "9400100000000000", "0000000000000000",
                                    "411111111111111", "7111111111111114"])
def test_luhn_invalid_or_unissued_numbers_are_not_cards(number):
    """A wrong check digit, an unknown issuer range or a wrong length is not a card."""
    assert not card_valid(number)


def test_luhn_is_the_textbook_algorithm():
    """79927398713 is the classic Luhn example."""
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize("iban", ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
                                  "NL91ABNA0417164300", "NO9386011117947", "CH9300762011623852957"])
def test_valid_ibans_pass_length_and_mod_97(iban):
    """Registry examples of several countries are valid."""
    assert iban_valid(iban)


@pytest.mark.parametrize("iban", ["DE89370400440532013001", "DE8937040044053201300", "XX89370400440532013000",
                                  "GB00WEST12345698765432"])
def test_ibans_with_a_wrong_checksum_length_or_country_are_rejected(iban):
    """One changed digit, a missing digit or an unknown country fails."""
    assert not iban_valid(iban)


@pytest.mark.parametrize(("ssn", "valid"), [("123456789", True), ("000123456", False), ("666123456", False),
                                            ("912345678", False), ("123006789", False), ("123450000", False)])
def test_ssn_area_group_and_serial_rules(ssn, valid):
    """Area 000, 666 and 9xx, group 00 and serial 0000 are never issued."""
    assert ssn_valid(ssn) is valid


@pytest.mark.parametrize(("digits", "code"), [("447911123456", "44"), ("14155552671", "1"), ("4930123456", "49"),
                                              ("353861234567", "353"), ("0123", None)])
def test_calling_codes_are_read_from_the_front(digits, code):
    """One-, two- and three-digit calling codes are told apart."""
    assert country_code(digits) == code


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 00", "DE89-370400440532013000",
                                  "DE8937040044053201300\u00e9"])
def test_an_iban_with_separators_or_foreign_characters_is_invalid_not_an_error(iban):
    """The check takes the compact form only; anything else is simply not a valid IBAN."""
    assert not iban_valid(iban)
