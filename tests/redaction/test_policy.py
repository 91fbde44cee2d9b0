"""Visibility per class and scopes: masked by default, widened only by scopes, never clear for the sensitive four."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass, Visibility
from deskgate.server.redaction.policy import NEVER_CLEAR, VisibilityPolicy

TIER1 = frozenset({"customers:read", "orders:read"})


@pytest.fixture(scope="module")
def policy() -> VisibilityPolicy:
    return VisibilityPolicy.load()


def test_a_session_without_pii_scopes_sees_every_class_masked(policy):
    """The shipped default: everything masked."""
    assert set(policy.view(TIER1).values()) == {Visibility.MASKED}


@pytest.mark.parametrize(("scope", "classes"), [
    ("pii:contact", {PiiClass.EMAIL, PiiClass.PHONE}),
    ("pii:address", {PiiClass.ADDRESS}),
    ("pii:identity", {PiiClass.NAME, PiiClass.DOB}),
])
def test_each_pii_scope_clears_exactly_its_classes(policy, scope, classes):
    """pii:contact clears email and phone, pii:address the address, pii:identity name and date of birth."""
    view = policy.view(TIER1 | {scope})
    assert {cls for cls, seen in view.items() if seen is Visibility.CLEAR} == classes


def test_cards_ibans_national_ids_and_secrets_are_never_clear(policy):
    """Even a session holding every scope sees them masked."""
    from deskgate.scopes.catalogue import SCOPES

    view = policy.view(frozenset(SCOPES))
    assert all(view[cls] is Visibility.MASKED for cls in NEVER_CLEAR)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redaction.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_config_that_makes_cards_clear_is_refused_with_file_and_line(tmp_path):
    """The loader refuses to widen a never-clear class and says where."""
    path = write(tmp_path, '[classes.email]\ndefault = "masked"\n\n[classes.card]\nclear = ["pii:contact"]\n')
    with pytest.raises(ConfigError) as info:
        VisibilityPolicy.load(path)
    assert info.value.file == str(path)
    assert "card" in info.value.reason and "never be clear" in info.value.reason


def test_an_unknown_scope_is_refused(tmp_path):
    """A typo in a scope name fails at start-up rather than silently never matching."""
    path = write(tmp_path, '[classes.email]\nclear = ["pii:contacts"]\n')
    with pytest.raises(ConfigError, match="unknown scope"):
        VisibilityPolicy.load(path)


def test_free_text_is_not_a_visibility_class(tmp_path):
    """Free text is always scanned; a rule for it is refused."""
    path = write(tmp_path, '[classes.free_text]\ndefault = "clear"\n')
    with pytest.raises(ConfigError, match="not a visibility class"):
        VisibilityPolicy.load(path)


def test_a_hidden_default_can_be_lifted_to_masked_and_to_clear(tmp_path):
    """`masked` and `clear` scopes widen a hidden class step by step; classes left out stay masked."""
    path = write(tmp_path, '[classes.dob]\ndefault = "hidden"\nmasked = ["tickets:read"]\nclear = ["pii:identity"]\n')
    policy = VisibilityPolicy.load(path)
    assert policy.visibility(PiiClass.DOB, frozenset()) is Visibility.HIDDEN
    assert policy.visibility(PiiClass.DOB, frozenset({"tickets:read"})) is Visibility.MASKED
    assert policy.visibility(PiiClass.DOB, frozenset({"tickets:read", "pii:identity"})) is Visibility.CLEAR
    assert policy.visibility(PiiClass.EMAIL, frozenset({"pii:contact"})) is Visibility.MASKED


def test_a_view_is_read_only_and_worked_out_once_per_scope_set(policy):
    """The view is cached per scope set; a caller cannot change what the next call sees."""
    view = policy.view(TIER1)
    assert policy.view(frozenset(TIER1)) is view
    with pytest.raises(TypeError):
        view[PiiClass.EMAIL] = Visibility.CLEAR  # type: ignore[index]
    assert policy.view(TIER1)[PiiClass.EMAIL] is Visibility.MASKED
