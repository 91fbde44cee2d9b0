"""Everything a running deskgate holds, built in one place, in dependency order.

`Runtime.open(paths)` is used by `deskgate serve`, by admin commands that need the chain, and by the
end-to-end tests, so all three run the same wiring. Configuration is loaded and validated here, at
start-up: a bad policy, role or redaction file stops the server before it answers anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.roles import Roles, load_roles
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.audit.batching import GroupCommit
from deskgate.server.audit.open import open_audit_log
from deskgate.server.chain import ChainSettings, GuardChain
from deskgate.server.manifest.sources import build_served_manifest
from deskgate.server.policy.approvals import Approvals
from deskgate.server.policy.model import Policy, load_policy
from deskgate.server.policy_stage import PolicyStage
from deskgate.server.redaction.redactor import Redactor
from deskgate.server.settings import Paths, Settings, database_url, load_settings
from deskgate.server.store.db import Database, open_database
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.catalogue import build_catalogue
from deskgate.tools.spec import Catalogue

logger = logging.getLogger("deskgate")


@dataclass
class Runtime:
    paths: Paths
    settings: Settings
    state_db: Database
    backend_db: Database
    state: StateStore
    backend: SqlSupportBackend
    keys: SigningKeys
    roles: Roles
    catalogue: Catalogue
    policy: Policy
    issuer: TokenIssuer
    verifier: TokenVerifier
    redactor: Redactor
    audit: GroupCommit
    manifest: dict
    chain: GuardChain

    @classmethod
    def open(cls, paths: Paths, *, settings: Settings | None = None, policy_path: Path | None = None) -> Runtime:
        settings = settings or load_settings(paths)
        paths.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        url = database_url()
        state_db = open_database(url, paths.state_db)
        # On PostgreSQL state and the demo backend share one database, so one connection pool.
        backend_db = state_db if url else open_database(url, paths.backend_db)
        state = StateStore(state_db)
        state.upgrade()
        backend = SqlSupportBackend(backend_db)
        backend.upgrade()
        keys = SigningKeys(paths, settings.tokens)
        keys.ensure()
        roles = load_roles()
        catalogue = build_catalogue()
        # A deployment's own policy ($DESKGATE_HOME/policy.toml) replaces the shipped one when present.
        policy = load_policy(catalogue, policy_path or paths.policy_file())
        manifest = build_served_manifest(catalogue, policy, roles)
        issuer = TokenIssuer(keys, state.tokens, settings.tokens)
        verifier = TokenVerifier(keys, state.tokens, settings.tokens)
        redactor = Redactor.load(paths)
        audit = open_audit_log(paths, settings, state_db)
        approvals = Approvals(state_db)
        approvals.upgrade()
        policy_stage = PolicyStage(policy, catalogue=catalogue, state=state, approvals=approvals, keys=keys,
                                   issuer=settings.tokens.issuer, manifest_hash=manifest["manifest_hash"])
        chain = GuardChain(
            verifier=verifier, catalogue=catalogue, backend=backend, state=state, policy=policy_stage,
            redactor=redactor, audit=audit,
            settings=ChainSettings(max_argument_bytes=settings.server.max_argument_bytes,
                                   reads_fail_closed=settings.audit.reads_fail_closed,
                                   manifest_hash=manifest["manifest_hash"],
                                   bind_manifest=settings.tokens.bind_manifest),
        )
        return cls(paths, settings, state_db, backend_db, state, backend, keys, roles, catalogue, policy,
                   issuer, verifier, redactor, audit, manifest, chain)

    async def aclose(self) -> None:
        await self.audit.aclose()
        self.state_db.close()
        if self.backend_db is not self.state_db:
            self.backend_db.close()
