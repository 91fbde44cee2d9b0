"""Server settings: the packaged `config/server.toml`, then `$DESKGATE_HOME/deskgate.toml`, then env.

Environment variables that matter:
    DESKGATE_HOME           state directory (default ~/.deskgate)
    DESKGATE_DATABASE_URL   postgresql://... moves all shared state (and the demo backend) there
    DESKGATE_TOKEN          the session token on stdio (there are no headers there)
    DESKGATE_TOKEN_FILE     or a file holding it, read again whenever it changes (rotation without a restart)
    DESKGATE_SIGNING_KEY    the token signing key, for containers without a keyring
    DESKGATE_AUDIT_KEY      the audit checkpoint signing key (must differ from the token key)
    DESKGATE_FINGERPRINT_KEY  the HMAC key of PII fingerprints in audit records (base64url, 32 bytes)
    DESKGATE_AUDIT_ANCHOR_FILE / DESKGATE_AUDIT_ANCHOR_COMMAND  where signed checkpoints are shipped
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from deskgate.config import line_of, load_model, packaged, read_toml
from deskgate.server.errors import ConfigError
from deskgate.server.http_security import WILDCARD_ADDRESSES, HostPattern, OriginPattern, Proxies, origin_of
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


def _checked(parse: Callable[[str], object]) -> Callable[[list[str]], list[str]]:
    def check(entries: list[str]) -> list[str]:
        for entry in entries:
            parse(entry)  # ValueError names the entry; load_model turns it into a ConfigError with file and line
        return entries
    return check


def _public_url(value: str) -> str:
    if value:
        origin_of(value)  # scheme://host[:port] and nothing after it
    return value.rstrip("/")


class ServerSection(_Strict):
    name: str = "deskgate"
    host: str = "127.0.0.1"
    port: int = Field(8750, ge=1, le=65535)
    # "": http://<bound address>:<port> (http://127.0.0.1:<port> when bound to every address).
    public_url: Annotated[str, AfterValidator(_public_url)] = ""
    allowed_hosts: Annotated[list[str], AfterValidator(_checked(HostPattern.parse))] = []
    allowed_origins: Annotated[list[str], AfterValidator(_checked(OriginPattern.parse))] = []
    trusted_proxies: Annotated[list[str], AfterValidator(_checked(lambda e: Proxies([e])))] = []
    max_request_bytes: int = Field(262144, ge=1024)
    max_argument_bytes: int = Field(65536, ge=256)

    def served_url(self, host: str, port: int) -> str:
        """The URL clients reach this server at: `public_url`, else the address actually served."""
        if self.public_url:
            return self.public_url
        if host in WILDCARD_ADDRESSES:
            host = "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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


class BackendSection(_Strict):
    """`[backends.<domain>]`: the system one domain acts on. Secrets are named here, never written here."""

    kind: Literal["sql", "stripe", "helpdesk"] = "sql"
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")  # helpdesk base URL; Stripe's api_base
    api_base: str | None = Field(None, pattern=r"^https?://[^\s]+$")  # omit for Stripe itself
    api_key_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")
    token_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")
    keyring: str | None = Field(None, min_length=1, max_length=100)  # keyring service; user: the domain
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_cooldown_seconds: int = Field(30, ge=1, le=3600)
    queue: int | None = Field(None, ge=1)        # helpdesk: the queue id of customers' tickets
    human_queue: int | None = Field(None, ge=1)  # helpdesk: the queue id hand-offs go to
    # Literal secrets are refused by name, so the error says what to do instead.
    api_key: str | None = None
    token: str | None = None

    @field_validator("api_key", "token")
    @classmethod
    def _no_literal_secret(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("a secret never goes in this file: name its environment variable "
                             "(api_key_env / token_env) or a keyring service (keyring)")
        return None


class BackendsSection(_Strict):
    """Which system each domain acts on; a domain left out stays on the embedded demo backend."""

    billing: BackendSection = BackendSection()
    tickets: BackendSection = BackendSection()
    commerce: BackendSection = BackendSection()
    identity: BackendSection = BackendSection()

    @field_validator("billing", "tickets", "commerce", "identity")
    @classmethod
    def _kind_fits_domain(cls, value: BackendSection, info: ValidationInfo) -> BackendSection:
        allowed = _KINDS[str(info.field_name)]
        if value.kind not in allowed:
            raise ValueError(f"kind {value.kind!r} cannot serve {info.field_name}; it takes {' or '.join(allowed)}")
        return value


_KINDS = {"billing": ("sql", "stripe"), "tickets": ("sql", "helpdesk"), "commerce": ("sql",), "identity": ("sql",)}


class ConsoleSection(_Strict):
    """The web console and `deskgate login` (server/console/, server/people/)."""

    idle_timeout: Duration = "15m"
    absolute_timeout: Duration = "8h"
    cli_credential_ttl: Duration = "15m"    # what `deskgate login` gives the CLI
    secure_cookies: bool = False            # also Secure whenever the request or public_url is https
    failures_per_account: int = Field(5, ge=1)
    failures_per_address: int = Field(20, ge=1)
    failure_window: Duration = "15m"


WebhookEvent = Literal["approval.pending", "approval.decided", "handoff.created", "breaker.tripped",
                       "audit.verify_failed"]


class WebhookSection(_Strict):
    """One `[[webhooks]]` receiver (server/notify/)."""

    url: str = Field(pattern=r"^https?://")
    events: tuple[WebhookEvent, ...] = Field(min_length=1)
    secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")


class Settings(_Strict):
    server: ServerSection = ServerSection()
    tokens: TokensSection = TokensSection()
    audit: AuditSection = AuditSection()
    backends: BackendsSection = BackendsSection()
    console: ConsoleSection = ConsoleSection()
    webhooks: tuple[WebhookSection, ...] = ()


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
        self.roles = home / "roles.toml"    # a deployment's own roles, replacing the shipped ones
        self.manifest_lock = home / "manifest.lock"

    def policy_file(self) -> Path | None:
        """The deployment's own policy if it has one (None: the shipped `config/policy.toml`)."""
        return self.policy if self.policy.exists() else None

    def roles_file(self) -> Path | None:
        """The deployment's own roles if it has them (None: the shipped `config/roles.toml`)."""
        return self.roles if self.roles.exists() else None

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
        overrides, text = read_toml(paths.overrides)
        try:  # the deployment's own file alone first, so an error names its line
            Settings.model_validate(overrides)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}",
                              file=str(paths.overrides), line=line_of(text, first["loc"])) from None
    try:
        return load_model(packaged("server.toml"), Settings, overrides)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"{exc.reason} (after applying {paths.overrides})") from exc
        raise


def database_url() -> str | None:
    return os.environ.get("DESKGATE_DATABASE_URL") or None
