"""Policy as data: the packaged policy loads; a bad policy stops start-up naming file and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deskgate.config import packaged
from deskgate.server.errors import ConfigError
from deskgate.server.policy.model import load_policy, policy_version
from deskgate.tools.spec import ToolSpec

PACKAGED = packaged("policy.toml").read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _line(text: str, needle: str, after: str | None = None) -> int:
    start = _line(text, after) if after else 0
    return next(i for i, line in enumerate(text.splitlines(), 1) if i > start and needle in line)


def _error(tmp_path: Path, specs: dict[str, ToolSpec], text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_policy(specs.values(), _write(tmp_path, text))
    return err.value


def test_the_packaged_policy_covers_every_write_tool_and_has_a_stable_version(specs: dict[str, ToolSpec]) -> None:
    """Loading twice gives the same SHA-256 version; every write tool has a tier."""
    first, second = load_policy(specs.values()), load_policy(specs.values())
    assert set(first.tools) == set(specs)
    assert policy_version(first) == policy_version(second)
    assert len(policy_version(first)) == 64


def test_the_version_is_of_the_effective_policy_not_its_spelling(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """'60m' and '1h', '1500' and '1500.00' mean the same policy; a changed limit is another one."""
    same = PACKAGED.replace('window = "1h" }', 'window = "60m" }').replace('"1500.00"', "1500")
    other = PACKAGED.replace('per_hour = "1500.00"', 'per_hour = "1400.00"')
    base = policy_version(load_policy(specs.values()))
    assert policy_version(load_policy(specs.values(), _write(tmp_path, same))) == base
    assert policy_version(load_policy(specs.values(), _write(tmp_path, other))) != base


def test_an_unknown_key_in_a_tool_table_names_its_line(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """A typo such as `confirmaton` is an error, not a silently ignored key."""
    text = PACKAGED.replace('confirmation = "agent"', 'confirmaton = "agent"')
    err = _error(tmp_path, specs, text)
    assert err.line == _line(text, "confirmaton =")
    assert "confirmaton" in err.reason and str(err.file).endswith("policy.toml")


def test_a_bad_tier_names_its_line(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """Only automate, assist and escalate are tiers."""
    text = PACKAGED.replace('[tools.add_ticket_note]\ntier = "automate"', '[tools.add_ticket_note]\ntier = "yolo"')
    err = _error(tmp_path, specs, text)
    assert err.line == _line(text, '"yolo"')


def test_an_unknown_tool_names_its_table_line(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """Rules for a tool the catalogue does not have are a mistake (a typo or a removed tool)."""
    text = PACKAGED + '\n[tools.refund_everything]\ntier = "automate"\n'
    err = _error(tmp_path, specs, text)
    assert err.line == _line(text, "[tools.refund_everything]")


def test_a_write_tool_without_rules_stops_start_up(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """Deny by default: a new write tool needs a tier before the server will start."""
    extra = replace(specs["add_ticket_note"], name="delete_customer")
    with pytest.raises(ConfigError) as err:
        load_policy([*specs.values(), extra])
    assert "delete_customer" in err.value.reason


@pytest.mark.parametrize(("old", "new", "needle"), [
    ('{ above = "500.00", tier = "escalate" },   # above', '{ above = "40.00", tier = "escalate" },   # above',
     "thresholds"),
    ('{ above = "50.00", tier = "assist" },      # 50.01', '{ above = "50.00", tier = "automate" },      # 50.01',
     "stricter"),
    ('fact = "reason_code_allowed"', 'fact = "agent_feels_lucky"', "unknown fact"),
    ('per_hour = "1500.00"', "per_hour = 1500.5", "strings"),
    ('ttl = "2m" ', 'ttl = "10m" ', "at most 5m"),
    ('reason_codes = "refund"', 'reason_codes = "refunds"', "no list"),
    ('refund = ["damaged_item", "not_delivered", "wrong_item", "late_delivery", "duplicate_charge", "quality_issue"]',
     "refund = []", "is empty"),
])
def test_invalid_values_are_refused_with_a_reason(tmp_path: Path, specs: dict[str, ToolSpec], old: str, new: str,
                                                  needle: str) -> None:
    """Unordered thresholds, a non-escalating threshold, unknown facts, float money, long TTLs, bad lists."""
    assert old in PACKAGED
    err = _error(tmp_path, specs, PACKAGED.replace(old, new, 1))
    assert needle in err.reason
    assert err.line is not None


@pytest.mark.parametrize(("table", "line", "needle"), [
    ("[tools.add_ticket_note]", 'undo_window = "1h"', "undo window"),
    ("[tools.add_ticket_note]", 'thresholds = [{ above = "5.00", tier = "assist" }]', "pay out"),
    ("[tools.issue_refund]", 'confirmation = "none"', "irreversible"),
    ("[tools.add_ticket_note]", 'reason_codes = "refund"', "reason_code argument"),
])
def test_rules_that_do_not_fit_the_tool_are_refused(tmp_path: Path, specs: dict[str, ToolSpec], table: str,
                                                    line: str, needle: str) -> None:
    """An undo window on an irreversible tool, amounts on a tool without one, an unconfirmed refund."""
    text = PACKAGED.replace('confirmation = "agent"', "") if "confirmation" in line else PACKAGED
    text = text.replace(f"{table}\n", f"{table}\n{line}\n", 1)
    err = _error(tmp_path, specs, text)
    assert needle in err.reason
    assert err.line == _line(text, line, after=table)


def test_a_gate_whose_fact_the_tool_cannot_compute_is_refused(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """requester_is_account_admin on a tool with no requester could never pass: a policy bug."""
    gate = ('[[tools.add_ticket_note.gates]]\nfact = "requester_is_account_admin"\nmust_be = true\n'
            'otherwise = "deny"\nreason = "x"\n')
    err = _error(tmp_path, specs, PACKAGED + "\n" + gate)
    assert "requester_id" in err.reason


def test_an_unreadable_toml_file_names_its_line(tmp_path: Path, specs: dict[str, ToolSpec]) -> None:
    """A syntax error is reported with the line TOML gives."""
    err = _error(tmp_path, specs, PACKAGED + "\n[tools.broken\n")
    assert err.line == len((PACKAGED + "\n[tools.broken\n").splitlines())
