"""The official MCP conformance suite's server scenarios pass against a real `deskgate serve`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("run_conformance.py")
# Scenarios that apply to a curated, authenticated tool server (run_conformance.py says why the rest do not).
APPLICABLE = ("server-initialize", "ping", "tools-list", "prompts-list", "resources-list")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is needed to install the conformance suite")
def test_every_applicable_conformance_scenario_passes_in_both_protocol_eras() -> None:
    """Both eras the suite knows: initialize, ping, tools/list and the empty prompt and resource lists answer
    as the specification says, and a forged Host is refused while a loopback one is served."""
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    for era in ("2025-06-18", "2025-11-25"):
        for scenario in APPLICABLE:
            assert any(line.split()[:3] == [era, scenario, "passed"] for line in lines), (era, scenario)
    assert any(line.split()[:3] == ["2025-11-25", "dns-rebinding-protection", "passed"] for line in lines)
