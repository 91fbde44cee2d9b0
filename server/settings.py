"""Server settings: the packaged `config/server.toml`, then `$DESKGATE_HOME/deskgate.toml`, then env.

Environment variables that matter:
    DESKGATE_HOME           state directory (default ~/.deskgate)
    DESKGATE_DATABASE_URL   postgresql://... moves all shared state (and the demo backend) there
    DESKGATE_TOKEN          the session token on stdio (there are no headers there)
    DESKGATE_SIGNING_KEY    the token signing key, for containers without a keyring
    DESKGATE_AUDIT_KEY      the audit checkpoint signing key (must differ from the token key)
    DESKGATE_FINGERPRINT_KEY  the HMAC key of PII fingerprints in audit records (base64url, 32 bytes)
    DESKGATE_AUDIT_ANCHOR_FILE / DESKGATE_AUDIT_ANCHOR_COMMAND  where signed checkpoints are shipped
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from deskgate.config import load_model, packaged, read_toml
from deskgate.server.errors import ConfigError
from deskgate.server.statedir import check_state_dir

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'30m' -> 1800. Only whole numbers with one unit (s, m, h, d)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration like 30m, 8h or 90s: {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[str, AfterValidator(lambda v: (parse_duration(v), v)[1])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSection(_Strict):
    name: str = "deskgate"
    host: str = "127.0.0.1"
    port: int = Field(8750, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8750"
    max_request_bytes: int = Field(262144, ge=1024)
    max_argument_bytes: int = Field(65536, ge=256)


class TokensSection(_Strict):
    issuer: str = "deskgate"
    audience: str = "deskgate"
    default_ttl: Duration = "30m"
    max_ttl: Duration = "8h"
    leeway_seconds: int = Field(30, ge=0, le=300)
    max_token_bytes: int = Field(8192, ge=512, le=65536)
    bind_manifest: bool = False


class AuditSection(_Strict):
    reads_fail_closed: bool = True
    # False: a read's record is written (in the log, surviving a crash of the process) before its
    # answer and fsync'd within `fsync_reads_within_ms` by the group commit. Writes are fsync'd before
    # they run and before they answer either way. See docs/SECURITY.md, "What the audit log guarantees".
    fsync_reads: bool = False
    # With fsync_reads = false: the longest a read's written record waits for its fsync. Reads written
    # meanwhile share that fsync (fewer fsyncs competing with the answers); a durable append ends the wait.
    fsync_reads_within_ms: int = Field(10, ge=0, le=1000)
    checkpoint_every_records: int = Field(1000, ge=1)
    checkpoint_every_seconds: int = Field(60, ge=1)
    rotate_bytes: int = Field(64 * 1024 * 1024, ge=4096)


class Settings(_Strict):
    server: ServerSection = ServerSection()
    tokens: TokensSection = TokensSection()
    audit: AuditSection = AuditSection()


class Paths:
    """Where everything lives under the state directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.state_db = home / "state.db"
        self.backend_db = home / "backend.db"
        self.audit_dir = home / "audit"
        self.keys_dir = home / "keys"
        self.overrides = home / "deskgate.toml"
        self.policy = home / "policy.toml"  # a deployment's own policy, replacing the shipped one
        self.manifest_lock = home / "manifest.lock"

    def policy_file(self) -> Path | None:
        """The deployment's own policy if it has one (None: the shipped `config/policy.toml`)."""
        return self.policy if self.policy.exists() else None

    @classmethod
    def from_env(cls) -> Paths:
        """The state directory the environment names, checked (`statedir`): refused if unsafe."""
        raw = os.environ.get("DESKGATE_HOME")
        paths = cls(Path(raw).expanduser() if raw else Path.home() / ".deskgate")
        check_state_dir(paths.home)
        return paths


def load_settings(paths: Paths) -> Settings:
    overrides: dict[str, object] = {}
    if paths.overrides.exists():
        overrides, _ = read_toml(paths.overrides)
    try:
        return load_model(packaged("server.toml"), Settings, overrides)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"{exc.reason} (after applying {paths.overrides})") from exc
        raise


def database_url() -> str | None:
    return os.environ.get("DESKGATE_DATABASE_URL") or None
