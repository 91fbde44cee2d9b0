"""`deskgate manifest pin` and `diff` on a deployment's own policy: tightening never reads as raising risk.

Through the CLI, on the real catalogue and the shipped policy: a deployment's first pin shows what its
policy changes against the released lock, and a change that only tightens has no `!` line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deskgate.config import packaged
from deskgate.server.cli import app
from deskgate.server.manifest import lock, sources
from deskgate.server.manifest.diff import diff

SHIPPED = packaged("policy.toml").read_text(encoding="utf-8")

# Each of these makes the shipped policy stricter, never looser.
TIGHTER = {
    "tool switched off": ("[tools.apply_account_credit]\n", "[tools.apply_account_credit]\nenabled = false\n"),
    "read tool switched off": ("[tools.verify_identity]\n", "[tools.get_ticket]\nenabled = false\n\n"
                                                            "[tools.verify_identity]\n"),
    "rollout share": ("[tools.cancel_subscription]\n", "[tools.cancel_subscription]\nrollout = 0.05\n"),
    "threshold added where there was none": (
        "[tools.apply_account_credit]\n",
        '[tools.apply_account_credit]\nthresholds = [{ above = "20.00", tier = "escalate" }]\n'
        "[tools.apply_account_credit_was]\n"),
    "thresholds merged into one stricter": (
        '    { above = "50.00", tier = "assist" },      # 50.01 - 500.00: an approver decides\n'
        '    { above = "500.00", tier = "escalate" },   # above 500.00: a specialist handles it\n',
        '    { above = "30.00", tier = "escalate" },\n'),
    "limit added where there was none": (
        '[tools.escalate_to_human]\ntier = "automate"\nlimits = [{ per = "session", max = 5, window = "1h" }]\n',
        '[tools.escalate_to_human]\ntier = "automate"\nlimits = [{ per = "session", max = 5, window = "1h" }, '
        '{ per = "tool", max = 100, window = "1h" }]\n'),
    "shorter approvals": ('ttl = "4h"', 'ttl = "1h"'),
    "supervisors stricter": ("[tools.verify_identity]\n",
                             "[roles.supervisor.tools.issue_refund]\n"
                             'thresholds = [{ above = "20.00", tier = "assist" }, '
                             '{ above = "300.00", tier = "escalate" }]\n'
                             "\n[tools.verify_identity]\n"),
    "read-only deployment": ("[confirmation]\n", "read_only = true\n\n[confirmation]\n"),
}


def _policy(home: Path, old: str, new: str) -> None:
    assert old in SHIPPED, old
    text = SHIPPED.replace(old, new, 1)
    if "apply_account_credit_was" in text:  # the threshold case replaces only the header line
        text = text.replace("[tools.apply_account_credit_was]\n", "")
        text = text.replace('thresholds = [\n    { above = "50.00", tier = "assist" },\n    '
                            '{ above = "500.00", tier = "escalate" },\n]\nlimits = [{ per = "session", max = 20, '
                            'window = "1h" }]\n\n[[tools.apply_account_credit.gates]]',
                            'limits = [{ per = "session", max = 20, window = "1h" }]\n\n'
                            "[[tools.apply_account_credit.gates]]")
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text(text)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    return tmp_path / "home"


@pytest.mark.parametrize("case", sorted(TIGHTER))
def test_a_tightening_is_never_reported_as_raising_risk(home: Path, case: str) -> None:
    _policy(home, *TIGHTER[case])
    changes = diff(lock.load(packaged("manifest.lock")), sources.served_manifest())
    assert changes, case
    assert [c for c in changes if c.raises_risk] == [], case


def test_the_same_change_the_other_way_raises_risk(home: Path) -> None:
    """Loosening is still caught: a larger rollout, a role with higher thresholds, a lower tier."""
    released = lock.load(packaged("manifest.lock"))
    _policy(home, '    { above = "50.00", tier = "assist" },      # 50.01 - 500.00: an approver decides\n'
                  '    { above = "500.00", tier = "escalate" },   # above 500.00: a specialist handles it\n',
            '    { above = "900.00", tier = "escalate" },\n')
    assert any(c.raises_risk and c.kind == "thresholds_loosened" for c in diff(released, sources.served_manifest()))
    _policy(home, "[tools.verify_identity]\n",
            '[roles.supervisor.tools.issue_refund]\nthresholds = [{ above = "200.00", tier = "assist" }]\n'
            "\n[tools.verify_identity]\n")
    assert any(c.raises_risk and c.subject == "role supervisor" for c in diff(released, sources.served_manifest()))
    _policy(home, "[actions]\nshared_with = \"session\"", "[actions]\nshared_with = \"subject\"")
    assert [c.kind for c in diff(released, sources.served_manifest()) if c.raises_risk] == ["sharing_widened"]


def test_the_first_pin_shows_its_diff_against_the_released_lock(home: Path) -> None:
    _policy(home, *TIGHTER["tool switched off"])
    result = CliRunner().invoke(app, ["manifest", "pin", "--yes"])
    assert result.exit_code == 0, result.output
    assert "changes against the released lock" in result.stderr
    assert "apply_account_credit: money write tool removed [tool_removed]" in result.stderr
    assert "\n!" not in result.stderr
    assert (home / "manifest.lock").exists()
