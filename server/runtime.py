"""Everything a running deskgate holds, built in one place, in dependency order.

`Runtime.open(paths)` is used by `deskgate serve`, by admin commands that need the chain, and by the
end-to-end tests, so all three run the same wiring. Configuration is loaded and validated here, at
start-up: a bad policy, role or redaction file stops the server before it answers anything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from deskgate.config import packaged
from deskgate.scopes.authenticator import Authenticator
from deskgate.scopes.clients import ClientRegistry
from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.roles import Roles, load_roles
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.audit.batching import GroupCommit
from deskgate.server.audit.open import open_audit_log
from deskgate.server.chain import ChainSettings, GuardChain
from deskgate.server.errors import ConfigError
from deskgate.server.manifest.lock import RELEASE_LOCK
from deskgate.server.manifest.lock import check as check_pinned
from deskgate.server.manifest.sources import build_served_manifest, served_catalogue
from deskgate.server.policy.approvals import Approvals
from deskgate.server.policy.model import Policy, load_policy
from deskgate.server.policy_source import PolicySource, PolicyTexts, Served, publish
from deskgate.server.policy_stage import PolicyStage
from deskgate.server.redaction.fingerprint import FingerprintKey
from deskgate.server.redaction.redactor import Redactor
from deskgate.server.settings import Paths, Settings, database_url, load_settings
from deskgate.server.statedir import open_state_dir
from deskgate.server.store.db import Database, open_database
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.base import SupportBackend
from deskgate.tools.backend.build import build_backend
from deskgate.tools.backend.composed import ComposedBackend
from deskgate.tools.backend.ledger import IntentLedger
from deskgate.tools.backend.recovery import Recoverable, recover_intents
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
    backend: SupportBackend  # one system per domain, as `[backends]` says (the demo by default)
    keys: SigningKeys
    roles: Roles
    catalogue: Catalogue
    issuer: TokenIssuer
    verifier: TokenVerifier
    redactor: Redactor
    audit: GroupCommit
    approvals: Approvals
    demo: SqlSupportBackend  # the embedded demo backend: the domains left on `sql`, and the action journal
    # Set by `wire`: what depends on the policy.
    policies: PolicySource = field(init=False)
    authenticator: Authenticator = field(init=False)  # every transport's one authentication path
    chain: GuardChain = field(init=False)

    @property
    def policy(self) -> Policy:
        return self.policies.served.policy

    @property
    def manifest(self) -> dict[str, Any]:
        return self.policies.served.manifest

    @classmethod
    def open(cls, paths: Paths, *, settings: Settings | None = None, policy_path: Path | None = None,
             clock: Callable[[], float] = time.time) -> Runtime:
        open_state_dir(paths.home)  # before anything in it is read
        settings = settings or load_settings(paths)
        url = database_url()
        state_db = open_database(url, paths.state_db)
        # On PostgreSQL state and the demo backend share one database, so one connection pool.
        backend_db = state_db if url else open_database(url, paths.backend_db)
        state = StateStore(state_db)
        state.upgrade()
        approvals = Approvals(state_db)
        approvals.upgrade()
        ClientRegistry(state_db).upgrade()  # the OAuth platform clients (server/oauth.py)
        demo = SqlSupportBackend(backend_db)
        demo.upgrade()
        backend = build_backend(settings.backends, demo, IntentLedger(backend_db))
        keys = SigningKeys(paths, settings.tokens)
        keys.ensure()
        runtime = cls(paths, settings, state_db, backend_db, state, backend, keys, load_roles(paths.roles_file()),
                      build_catalogue(),
                      TokenIssuer(keys, state.tokens, settings.tokens),
                      TokenVerifier(keys, state.tokens, settings.tokens), Redactor.load(paths),
                      open_audit_log(paths, settings, state_db), approvals, demo)
        runtime.wire(policy_path=policy_path, clock=clock)
        runtime.policies.adopt_published()  # once a policy was published, it is what every process serves
        return runtime

    def wire(self, *, policy_path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        """(Re)build the policy, the manifest and the guard chain over the same stores, keys and log.

        `open` calls it once; tests call it again for another policy file or a clock they control.
        """
        # A deployment's own policy and roles ($DESKGATE_HOME/policy.toml, roles.toml) replace the shipped ones.
        texts = PolicyTexts.of(self.paths)
        if policy_path is not None:
            texts = PolicyTexts(policy_path.read_text(encoding="utf-8"), texts.roles)
        self.policies = PolicySource(self.serve_policy(texts), self.state.meta, self.serve_policy)

        async def served_manifest_hash() -> str:  # tokens.bind_manifest: the manifest a reload publishes
            return (await self.policies.current()).manifest_hash

        bound_to = served_manifest_hash if self.settings.tokens.bind_manifest else None
        self.authenticator = Authenticator(self.verifier, self.audit, bound_to=bound_to)
        self.chain = GuardChain(
            catalogue=self.catalogue, backend=self.backend, state=self.state,
            policies=self.policies, redactor=self.redactor, audit=self.audit, clock=clock,
            fingerprints=FingerprintKey.load(self.paths),
            settings=ChainSettings(max_argument_bytes=self.settings.server.max_argument_bytes,
                                   reads_fail_closed=self.settings.audit.reads_fail_closed,
                                   fsync_reads=self.settings.audit.fsync_reads),
        )

    def serve_policy(self, texts: PolicyTexts) -> Served:
        """Validate a policy and roles (texts of the deployment's files; None: the shipped ones) against the
        catalogue, and build what serves them. A `ConfigError` names the file and line."""
        roles = load_roles(self.paths.roles, texts.roles) if texts.roles is not None else load_roles()
        policy = load_policy(self.catalogue, self.paths.policy if texts.policy is not None else None,
                             roles.grants(), texts.policy, backend=self.backend)
        served = served_catalogue(self.catalogue, policy)
        manifest = build_served_manifest(served, policy, roles)
        stage = PolicyStage(policy, catalogue=served, state=self.state, approvals=self.approvals,
                            keys=self.keys, issuer=self.settings.tokens.issuer,
                            manifest_hash=manifest["manifest_hash"])
        return Served(texts, policy, roles, manifest, stage)

    def reload_policy(self, actor: str) -> Served:
        """`deskgate policy reload` and SIGHUP: validate this home's policy and roles files, refuse them
        unless their manifest is pinned (`ManifestMismatch`, with the diff), publish them to every process
        sharing the state store, and audit it. A refusal changes nothing."""
        try:
            served = self.serve_policy(PolicyTexts.of(self.paths))
            target = self.paths.manifest_lock if self.paths.manifest_lock.exists() else packaged(RELEASE_LOCK)
            check_pinned(served.manifest, target)
        except ConfigError as exc:
            self.audit.append_sync({"kind": "admin", "action": "policy.reload_refused", "actor": actor,
                                    "code": exc.code, "reason": exc.reason[:500]})
            raise
        previous = publish(self.state.meta, served)
        self.audit.append_sync({"kind": "admin", "action": "policy.reloaded", "actor": actor,
                                "policy_version": served.stage.version, "manifest_hash": served.manifest_hash,
                                "previous": previous})
        return served

    def recover_intents(self) -> list[int]:
        """Settle the money intents a crashed process left without an outcome (`tools/backend/recovery.py`).
        Runs on a thread of its own, so it can be called from inside or outside an event loop."""
        systems = [b for b in self.backend.domains.distinct()
                   if isinstance(b, Recoverable)] if isinstance(self.backend, ComposedBackend) else []
        if not systems:
            return []

        def redact(tool: str, data: dict[str, Any]) -> dict[str, Any]:
            spec = self.catalogue.get(tool)
            if spec is None:  # an intent of a tool this catalogue no longer has: keep nothing of its result
                return {}
            return self.redactor.redact_output(data, spec.pii_classes(), frozenset())

        recovered: list[int] = []

        def run() -> None:
            recovered.extend(anyio.run(lambda: recover_intents(
                IntentLedger(self.backend_db), systems, self.audit.append_sync, redact,
                self.state.idempotency.complete, self.state.reservations.settle)))

        worker = threading.Thread(target=run, name="deskgate-recovery")
        worker.start()
        worker.join()
        return recovered

    def announce_start(self, transport: str) -> int:
        """Audit a server start with what it serves; say so when the policy or manifest changed since the
        last start (a changed policy or tool set is something security wants to see in the log)."""
        served = {"policy_version": self.policies.served.stage.version, "manifest_hash": self.manifest["manifest_hash"]}
        previous_text = self.state.meta.get_sync("served")
        previous = json.loads(previous_text) if previous_text else None
        event: dict[str, Any] = {"kind": "system", "action": "server.started", "transport": transport, **served}
        if previous is not None and previous != served:
            event["changed"] = {k: {"from": previous.get(k), "to": v} for k, v in served.items()
                                if previous.get(k) != v}
        seq = self.audit.append_sync(event)
        self.state.meta.set_sync("served", json.dumps(served, sort_keys=True))
        self.recover_intents()
        return seq

    async def aclose(self) -> None:
        await self.audit.aclose()
        self.state_db.close()
        if self.backend_db is not self.state_db:
            self.backend_db.close()
