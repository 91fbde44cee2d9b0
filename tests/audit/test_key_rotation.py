"""Audit key rotation: a handover checkpoint signed by the old key names the new one; `verify`
follows handovers from the first key and refuses any other change of key."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from deskgate.server.audit.checkpoints import make_checkpoint
from deskgate.server.audit.keys import KEY_NAME, NEXT_NAME, PUB_NAME, AuditKey, load_or_create_key, stage_next_key
from deskgate.server.cli.audit import app as audit_app
from deskgate.server.cli.keys import app as keys_app
from deskgate.server.errors import AuditUnavailable


def _checkpoints(kit) -> list[dict]:
    return [json.loads(line) for line in (kit.dir / "checkpoints.jsonl").read_bytes().splitlines()]


def _head(kit) -> tuple[int, str]:
    last = json.loads(kit.lines(max(i for i in range(1, 99) if kit.segment(i).exists()))[-1])
    return last["seq"], last["hash"]


def test_after_a_rotation_checkpoints_are_signed_by_the_new_key_and_verify_follows_the_handover(kit) -> None:
    log = kit.open(checkpoint_every_records=4)
    first = log._keys.current()
    root = (kit.dir / PUB_NAME).read_bytes()
    kit.fill(log, 6)
    new = AuditKey.generate()
    assert log.rotate_key(new) == first.kid
    kit.fill(log, 6)
    log.close()
    cps = _checkpoints(kit)
    handover = next(c for c in cps if "next" in c)
    assert (handover["kid"], handover["next"]["kid"], handover["why"]) == (first.kid, new.kid, "rotation")
    after = cps[cps.index(handover) + 1:]
    assert after and all(c["kid"] == new.kid for c in after)
    assert (kit.dir / PUB_NAME).read_bytes() == root  # verification still starts from the first key
    assert load_or_create_key(kit.dir).kid == new.kid
    report = kit.check()
    assert (report.ok, report.records, report.rotations) == (True, 12, 1)


def test_a_checkpoint_signed_by_the_retired_key_after_its_handover_is_refused(kit) -> None:
    """Whoever kept the old key cannot sign the chain's future: the handover retired it."""
    log = kit.open()
    kit.fill(log, 3)
    old = load_or_create_key(kit.dir)
    log.rotate_key(AuditKey.generate())
    kit.fill(log, 2)
    log.close()
    seq, head = _head(kit)
    with (kit.dir / "checkpoints.jsonl").open("ab") as f:
        f.write(make_checkpoint(old, seq, head, 0.0, "records"))
    report = kit.check()
    assert not report.ok
    assert any("signed by another key" in p.what for p in report.problems)


def test_a_handover_signed_by_any_other_key_is_refused_and_so_is_everything_it_hands_to(kit) -> None:
    """An attacker's key cannot enter the chain by writing its own handover."""
    log = kit.open()
    kit.fill(log, 3)
    log.close()
    attacker, theirs = AuditKey.generate(), AuditKey.generate()
    seq, head = _head(kit)
    with (kit.dir / "checkpoints.jsonl").open("ab") as f:
        f.write(make_checkpoint(attacker, seq, head, 0.0, "rotation", hand_to=theirs.public))
        f.write(make_checkpoint(theirs, seq, head, 0.0, "records"))
    report = kit.check()
    assert not report.ok and report.rotations == 0
    assert sum("signed by another key" in p.what for p in report.problems) == 2


def test_a_tampered_handover_is_refused(kit) -> None:
    """The signature covers the named key: swapping it breaks the handover."""
    log = kit.open()
    kit.fill(log, 3)
    log.rotate_key(AuditKey.generate())
    log.close()
    path = kit.dir / "checkpoints.jsonl"
    lines = path.read_bytes().splitlines()
    cps = [json.loads(line) for line in lines]
    i = next(n for n, c in enumerate(cps) if "next" in c)
    other = AuditKey.generate()
    cps[i]["next"] = json.loads(make_checkpoint(other, 0, "0", 0.0, "x", hand_to=other.public))["next"]
    lines[i] = json.dumps(cps[i], sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = kit.check()
    assert not report.ok and any("bad signature" in p.what for p in report.problems)


def test_a_server_running_with_the_old_key_signs_its_next_checkpoint_with_the_new_one(kit) -> None:
    """Another process (here another log on the same directory) rotates: this one switches keys
    before it signs again, so the chain verifies."""
    server = kit.open(checkpoint_every_records=3)
    kit.fill(server, 4)
    admin = kit.open()
    new = AuditKey.generate()
    admin.rotate_key(new)
    admin.close()
    kit.fill(server, 4)
    server.close()
    assert _checkpoints(kit)[-1]["kid"] == new.kid
    report = kit.check()
    assert report.ok and report.rotations == 1


def test_a_rotation_cut_short_before_its_handover_is_forgotten(kit) -> None:
    """Crash after the new key was staged, before the handover: the next start deletes the staged key."""
    log = kit.open()
    kit.fill(log, 3)
    log.close()
    before = load_or_create_key(kit.dir).kid
    stage_next_key(kit.dir, AuditKey.generate())
    log = kit.open()
    kit.fill(log, 2)
    log.close()
    assert not (kit.dir / NEXT_NAME).exists()
    assert load_or_create_key(kit.dir).kid == before
    assert kit.check().ok


def test_a_rotation_cut_short_after_its_handover_is_finished(kit) -> None:
    """Crash after the handover checkpoint, before the new key replaced audit.key: the next start
    promotes it, and checkpoints from then on verify under the new key."""
    log = kit.open()
    kit.fill(log, 3)
    new = AuditKey.generate()
    stage_next_key(kit.dir, new)
    with log._batch, log._locked():
        log._sign_head("rotation", hand_to=new.public)  # the handover is durable; audit.key is still the old one
    log.close()
    log = kit.open()
    kit.fill(log, 2)
    log.close()
    assert not (kit.dir / NEXT_NAME).exists()
    assert load_or_create_key(kit.dir).kid == new.kid
    report = kit.check()
    assert report.ok and report.rotations == 1


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("DESKGATE_AUDIT_KEY", raising=False)
    return tmp_path


def _cli(*args: str):
    root = typer.Typer()
    root.add_typer(keys_app, name="keys")
    root.add_typer(audit_app, name="audit")
    return CliRunner().invoke(root, list(args))


def test_the_cli_rotates_the_audit_key_and_verify_passes(home) -> None:
    first = _cli("keys", "rotate-audit")
    second = _cli("keys", "rotate-audit")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    verified = _cli("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["ok"] and report["records"] == 2  # the two admin records announcing the rotations
    assert (home / "audit" / KEY_NAME).exists() and not (home / "audit" / NEXT_NAME).exists()


def test_the_cli_refuses_to_rotate_a_key_that_comes_from_the_environment(home, monkeypatch) -> None:
    monkeypatch.setenv("DESKGATE_AUDIT_KEY", "A" * 43 + "=")
    result = _cli("keys", "rotate-audit")
    assert result.exit_code == 1 and "DESKGATE_AUDIT_KEY" in result.output
    assert not (home / "audit").exists()  # nothing written


def test_a_staged_key_planted_as_a_symlink_makes_the_log_refuse_to_open(kit, tmp_path) -> None:
    kit.open().close()
    elsewhere = tmp_path / "elsewhere.pem"
    elsewhere.write_bytes(AuditKey.generate().private_pem())
    elsewhere.chmod(0o600)
    (kit.dir / NEXT_NAME).symlink_to(elsewhere)
    with pytest.raises(AuditUnavailable, match=r"cannot read audit\.key\.next"):
        kit.open()
