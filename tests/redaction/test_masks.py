"""Masked values show enough to recognise, never enough to use, and are always strings."""

# ruff: noqa: RUF001 - full-width and other look-alike characters are the evasions under test

from __future__ import annotations

import ipaddress

import pytest

from bench.corpus import make_corpus
from bench.corpus import score as corpus
from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.detectors import detect
from deskgate.server.redaction.fold import fold
from deskgate.server.redaction.masks import mask, mask_canonical, mask_ip


@pytest.mark.parametrize(("cls", "value", "masked"), [
    (PiiClass.EMAIL, "john.doe@example.com", "j***@example.com"),
    (PiiClass.EMAIL, "not an address", "•••"),
    (PiiClass.PHONE, "+44 7700 900123", "+44 •••• ••• 123"),
    (PiiClass.PHONE, "+1 (415) 555-2671", "+1 •••• ••• 671"),
    (PiiClass.PHONE, "0044 20 7946 0958", "+44 •••• ••• 958"),
    (PiiClass.PHONE, "020 7946 0958", "•••• •••• 958"),
    (PiiClass.PHONE, "123", "••••"),
    (PiiClass.CARD, "4242 4242 4242 4242", "•••• 4242"),
    (PiiClass.CARD, "4242", "•••• 4242"),
    (PiiClass.IBAN, "DE89 3704 0044 0532 0130 00", "DE•• •••• 3000"),
    (PiiClass.NATIONAL_ID, "123-45-6789", "•••-••-6789"),
    (PiiClass.NATIONAL_ID, "AB 12 34 56 C", "•••••56C"),
    (PiiClass.IP, "203.0.113.7", "203.0.•••.•••"),
    (PiiClass.IP, "2001:db8::8a2e:370:7334", "2001:db8:•••"),
    (PiiClass.NAME, "Jane Q. Public", "J*** Q*** P***"),
    (PiiClass.ADDRESS, "221B Baker Street, London NW1 6XE, United Kingdom", "•••, United Kingdom"),
    (PiiClass.ADDRESS, "221B Baker Street", "•••"),
    (PiiClass.DOB, "1985-04-12", "1985-••-••"),
    (PiiClass.DOB, "12/04/1985", "1985-••-••"),
    (PiiClass.DOB, "unknown", "••••-••-••"),
    (PiiClass.SECRET, "hunter2", "[secret:secret]"),
])
def test_each_class_has_its_mask(cls, value, masked):
    """The documented mask per class (calling code and last three of a phone, last four of a card...)."""
    assert mask(cls, value) == masked


def test_a_secret_mask_names_only_its_kind():
    """A detected secret is replaced by its kind and nothing of its value."""
    assert mask(PiiClass.SECRET, "AKIAIOSFODNN7EXAMPLE", "aws_access_key") == "[secret:aws_access_key]"


def test_masks_read_through_full_width_and_zero_width_disguises():
    """The last four of a full-width card are shown as ASCII digits, never as the disguised characters."""
    assert mask(PiiClass.CARD, "４２４２ ４２４２ ４２４２ ４\u200b２４２") == "•••• 4242"


@pytest.mark.parametrize("cls", [PiiClass.NONE, PiiClass.FREE_TEXT])
def test_free_text_and_none_are_never_masked_whole(cls):
    """Those two are scanned, not masked; asking for a mask is a configuration error."""
    with pytest.raises(ConfigError):
        mask(cls, "anything")


def test_a_dotted_quad_is_masked_as_the_standard_library_reads_it():
    """The quick IPv4 path masks exactly what the `ipaddress` path would: valid quads by their first two
    octets, anything `ipaddress` refuses (octet above 255, leading zero) as a plain mask."""
    octets = [str(n) for n in range(300)] + ["00", "01", "010", "099", "999"]
    for octet in octets:
        for dotted in (f"{octet}.0.113.7", f"10.{octet}.2.3", f"1.2.{octet}.4", f"192.168.1.{octet}"):
            try:
                address = str(ipaddress.IPv4Address(dotted)).split(".")
                expected = f"{address[0]}.{address[1]}.•••.•••"
            except ValueError:
                expected = "•••"
            assert mask_ip(dotted) == expected, dotted


def test_every_detected_value_is_already_folded_so_it_is_masked_without_folding_again():
    """`mask_canonical` (what redaction uses for detections) skips the fold `mask` does: on every value the
    detectors find in the corpus, folding and stripping it changes nothing, so both masks agree."""
    texts = [r["text"] for r in corpus.load()] + [str(r["text"]) for r in make_corpus.generate(1)]
    values = [(d.cls, d.value, d.kind) for text in texts for d in detect(text)]
    assert len(values) > 5_000
    for cls, value, kind in values:
        assert fold(value).text.strip() == value
        assert mask_canonical(cls, value, kind) == mask(cls, value, kind)
