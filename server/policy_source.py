"""Which policy decides a call: the one the deployment published, on every server process.

    publish   `deskgate policy reload` (or SIGHUP to `deskgate serve`) loads the deployment's policy
              and roles files, validates them, refuses them unless the manifest they make is pinned
              (saying what differs), and writes their text with that manifest hash to the shared
              state store, in one transaction. A refusal changes nothing.
    apply     every process reads the published manifest hash on each call (one indexed row) and,
              when it is not the one it serves, rebuilds
              from the published text - validated again, and served only if it makes exactly the
              published manifest. A process that cannot (another catalogue, a damaged row) refuses
              calls (`policy_unavailable`) rather than decide under a policy the deployment replaced.

Once anything is published it is the deployment's policy: a process that starts serves it, whatever
its own files say (they change it only through a reload). Each call is decided, confirmed and
audited under the one policy it started with (`Served`), so the audit record's `policy_version`
is the version that decided it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from deskgate.scopes.roles import Roles
from deskgate.server.errors import ConfigError, StoreUnavailable
from deskgate.server.policy.model import Policy
from deskgate.server.policy_stage import PolicyStage
from deskgate.server.settings import Paths
from deskgate.server.store.state import DeploymentMeta

logger = logging.getLogger("deskgate.policy")

PUBLISHED = "policy.published"            # JSON: manifest_hash, policy_version, policy and roles text
PUBLISHED_HASH = "policy.published_hash"  # the manifest hash alone: what each call reads


class PolicyUnavailable(StoreUnavailable):
    """The published policy cannot be served by this process: calls are refused until it can."""

    code = "policy_unavailable"


@dataclass(frozen=True, slots=True)
class PolicyTexts:
    """A deployment's own policy and roles files (None: the shipped one)."""

    policy: str | None
    roles: str | None

    @classmethod
    def of(cls, paths: Paths) -> PolicyTexts:
        return cls(_read(paths.policy_file()), _read(paths.roles_file()))


@dataclass(frozen=True, slots=True)
class Served:
    """One policy as a process serves it: the rules, the roles, the manifest they make, and the stage
    that applies them."""

    texts: PolicyTexts
    policy: Policy
    roles: Roles
    manifest: dict[str, Any]
    stage: PolicyStage

    @property
    def manifest_hash(self) -> str:
        return str(self.manifest["manifest_hash"])


Build = Callable[[PolicyTexts], Served]


class PolicySource:
    """The policy a process serves now, following what the deployment published."""

    def __init__(self, served: Served, meta: DeploymentMeta, build: Build) -> None:
        self._served = served
        self._meta = meta
        self._build = build
        self._refused: tuple[str, str] | None = None  # (published hash, why this process cannot serve it)
        self._lock = anyio.Lock()

    @property
    def served(self) -> Served:
        """The policy served last (for start-up checks and admin views; a call uses `current`)."""
        return self._served

    def adopt_published(self) -> None:
        """At start-up: serve the published policy, if there is one (see the module docstring)."""
        published = self._meta.get_sync(PUBLISHED_HASH)
        if published is not None and published != self._served.manifest_hash:
            # Refused (and logged): every call is refused until a policy this process can serve is published.
            with contextlib.suppress(PolicyUnavailable):
                self._served = self._rebuild(published)

    async def current(self) -> Served:
        """The policy for a call that starts now."""
        published = await self._meta.get(PUBLISHED_HASH)
        if published is None or published == self._served.manifest_hash:
            return self._served
        async with self._lock:  # one rebuild, however many calls arrive meanwhile
            if published != self._served.manifest_hash:
                self._served = await anyio.to_thread.run_sync(self._rebuild, published)
                logger.warning("now serving the published policy %s (manifest %s)",
                               self._served.stage.version, published[:12])
        return self._served

    def _rebuild(self, published: str) -> Served:
        if self._refused is not None and self._refused[0] == published:
            raise PolicyUnavailable(self._refused[1])
        why = None
        try:
            record = json.loads(self._meta.get_sync(PUBLISHED) or "null")
            served = self._build(PolicyTexts(record["policy"], record["roles"]))
            if served.manifest_hash != published:
                why = (f"the published policy makes manifest {served.manifest_hash[:12]} here, not the published "
                       f"{published[:12]} (another catalogue version?)")
        except (ConfigError, TypeError, KeyError, json.JSONDecodeError) as exc:
            why = f"the published policy cannot be loaded here: {getattr(exc, 'reason', type(exc).__name__)}"
        if why is not None:
            logger.error("%s; refusing calls until a policy this process can serve is published", why)
            self._refused = (published, f"{why}; this server refuses calls until an operator reloads the policy")
            raise PolicyUnavailable(self._refused[1])
        self._refused = None
        return served


def publish(meta: DeploymentMeta, served: Served) -> dict[str, Any]:
    """Make `served` the deployment's policy, for every process; returns what was published before."""
    previous = json.loads(meta.get_sync(PUBLISHED) or "{}")
    record = {"manifest_hash": served.manifest_hash, "policy_version": served.stage.version,
              "policy": served.texts.policy, "roles": served.texts.roles}
    meta.set_all_sync({PUBLISHED: json.dumps(record, sort_keys=True), PUBLISHED_HASH: served.manifest_hash})
    return {k: previous.get(k) for k in ("manifest_hash", "policy_version")}


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
