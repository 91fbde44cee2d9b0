"""Pin and check: the lock holds the reviewed manifest; the server refuses any other one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from deskgate.server.errors import ConfigError
from deskgate.server.manifest import lock
from deskgate.server.manifest.build import HASH_KEY, canonical_bytes
from deskgate.server.manifest.lock import ManifestMismatch, check_served
from deskgate.server.settings import Paths


def test_pin_writes_canonical_json_that_loads_back_to_the_same_manifest(manifest_of: Any, tmp_path: Path) -> None:
    """Round trip: what is pinned is what is loaded, byte for byte, and the hash is returned."""
    manifest = manifest_of()
    path = tmp_path / "manifest.lock"
    assert lock.pin(manifest, path) == manifest[HASH_KEY]
    raw = path.read_bytes()
    assert raw == canonical_bytes({"kind": lock.LOCK_KIND, "manifest_hash": manifest[HASH_KEY],
                                   "manifest": manifest}) + b"\n"
    assert canonical_bytes(lock.load(path)) == canonical_bytes(manifest)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_new_lock_is_private_and_a_repinned_lock_keeps_its_mode(manifest_of: Any, tmp_path: Path) -> None:
    """A deployment's lock is created 0600; the release lock (0644 in the repository) stays readable."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    lock.pin(manifest_of(), path)
    assert path.stat().st_mode & 0o777 == 0o644


def test_pin_replaces_a_lock_and_leaves_no_temporary_file(manifest_of: Any, spec_changes: Any, tmp_path: Path) -> None:
    """The second pin wins and the directory holds only the lock."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    newer = manifest_of(spec_changes("find_customer", title="Find customers"))
    lock.pin(newer, path)
    assert lock.load(path)[HASH_KEY] == newer[HASH_KEY]
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.lock"]


def test_a_failed_pin_leaves_the_previous_lock_untouched(
    manifest_of: Any, spec_changes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atomic: when the disk refuses the fsync of the new lock, the old one is intact and nothing is left over."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ConfigError, match="No space left"):
        lock.pin(manifest_of(spec_changes("find_customer", title="Find customers")), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.lock"]


def test_pin_refuses_a_manifest_whose_hash_does_not_match_its_content(manifest_of: Any, tmp_path: Path) -> None:
    """A manifest edited after it was built cannot be pinned under its old hash."""
    manifest = manifest_of()
    manifest["tools"]["add_note"]["description"] = "Edited by hand."
    with pytest.raises(ConfigError, match="does not match"):
        lock.pin(manifest, tmp_path / "manifest.lock")
    assert not (tmp_path / "manifest.lock").exists()


def test_check_passes_for_the_pinned_manifest(manifest_of: Any, tmp_path: Path) -> None:
    """Same manifest, same hash: the server may start."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    lock.check(manifest_of(), path)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"description": "Add an internal note to the ticket. Reversible with undo_action."}, "description_changed"),
        ({"scope": "orders:read"}, "scope_changed"),
    ],
)
def test_check_refuses_a_served_manifest_that_differs_and_says_what_changed(
    manifest_of: Any, spec_changes: Any, tmp_path: Path, change: dict[str, Any], kind: str
) -> None:
    """One word or one scope: refused with a reason naming the tool and the change, and the change list."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    with pytest.raises(ManifestMismatch) as caught:
        lock.check(manifest_of(spec_changes("add_note", **change)), path)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.code == "manifest_mismatch"
    assert "add_note" in error.reason and str(path) in error.reason
    assert [c.kind for c in error.changes] == [kind]
    assert kind in error.diagnostics()


def test_check_refuses_a_lowered_tier(manifest_of: Any, sample: Any, tmp_path: Path) -> None:
    """Policy is part of what is pinned: a tier lowered after review stops start-up."""
    path = tmp_path / "manifest.lock"
    assisted = {**sample.policy, "issue_refund": {**sample.policy["issue_refund"], "tier": "assist"}}
    lock.pin(manifest_of(policy=assisted), path)
    with pytest.raises(ManifestMismatch) as caught:
        lock.check(manifest_of(), path)
    assert caught.value.changes[0].kind == "tier_lowered"


def test_a_missing_lock_is_an_error_unless_allowed(manifest_of: Any, tmp_path: Path) -> None:
    """Fail closed: no lock, no start, unless the caller explicitly allows it (development)."""
    path = tmp_path / "absent.lock"
    with pytest.raises(ConfigError, match="no such manifest or lock file"):
        lock.check(manifest_of(), path)
    lock.check(manifest_of(), path, allow_missing=True)


def test_allow_missing_does_not_excuse_a_lock_that_differs(manifest_of: Any, spec_changes: Any, tmp_path: Path) -> None:
    """`allow_missing` is about absence only."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    with pytest.raises(ManifestMismatch):
        lock.check(manifest_of(spec_changes("add_note", scope="orders:read")), path, allow_missing=True)


@pytest.mark.parametrize("tamper", ["manifest", "hash", "truncate", "shape"])
def test_a_tampered_or_damaged_lock_is_refused(manifest_of: Any, tmp_path: Path, tamper: str) -> None:
    """A lock whose stored hash does not match its manifest, torn JSON or another shape: refused."""
    path = tmp_path / "manifest.lock"
    lock.pin(manifest_of(), path)
    document = json.loads(path.read_bytes())
    if tamper == "manifest":
        document["manifest"]["tools"]["issue_refund"]["policy"]["tier"] = "assist"
        path.write_bytes(json.dumps(document).encode())
    elif tamper == "hash":
        document["manifest_hash"] = "0" * 64
        path.write_bytes(json.dumps(document).encode())
    elif tamper == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.write_text(json.dumps({"kind": lock.LOCK_KIND, "manifest": [1, 2]}))
    with pytest.raises(ConfigError) as caught:
        lock.check(manifest_of(), path)
    assert not isinstance(caught.value, ManifestMismatch)
    assert str(path) in caught.value.reason


def test_a_plain_manifest_file_loads_like_a_lock(manifest_of: Any, tmp_path: Path) -> None:
    """`deskgate manifest > m.json` output is accepted wherever a lock is (diff), with its hash verified."""
    path = tmp_path / "m.json"
    path.write_bytes(canonical_bytes(manifest_of()))
    assert lock.load(path)[HASH_KEY] == manifest_of()[HASH_KEY]


def test_serve_checks_the_deployment_lock_and_refuses_a_mismatch(
    manifest_of: Any, spec_changes: Any, tmp_path: Path
) -> None:
    """`check_served` without --dev: the deployment's pin binds, and a changed scope stops start-up."""
    paths = Paths(tmp_path)
    lock.pin(manifest_of(), paths.manifest_lock)
    check_served(manifest_of(), paths, dev=False, warn=pytest.fail)
    with pytest.raises(ManifestMismatch):
        check_served(manifest_of(spec_changes("add_note", scope="orders:read")), paths, dev=False, warn=pytest.fail)


def test_serve_falls_back_to_the_released_lock_when_the_deployment_has_none(manifest_of: Any, tmp_path: Path) -> None:
    """No $DESKGATE_HOME/manifest.lock: the release's config/manifest.lock binds (and the sample is not it)."""
    with pytest.raises(ManifestMismatch) as caught:
        check_served(manifest_of(), Paths(tmp_path), dev=False, warn=pytest.fail)
    assert caught.value.file is not None and caught.value.file.endswith("config/manifest.lock")


def test_serve_in_dev_mode_warns_what_changed_and_goes_on(
    manifest_of: Any, spec_changes: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The development bypass says so plainly, on the terminal and in the log."""
    paths = Paths(tmp_path)
    lock.pin(manifest_of(), paths.manifest_lock)
    warnings: list[str] = []
    check_served(manifest_of(spec_changes("add_note", scope="orders:read")), paths, dev=True, warn=warnings.append)
    [text] = warnings
    assert text.startswith("DEVELOPMENT MODE") and "scope_changed" in text
    assert "DEVELOPMENT MODE" in caplog.text
