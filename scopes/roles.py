"""Roles: named bundles of catalogue scopes (`config/roles.toml`), checked when they are loaded.

A role grants its own `scopes` plus those of the roles it `includes`. An unknown scope, an unknown
included role or an inclusion cycle is a `ConfigError` naming the file (and the line, where the
loader can place it): a bad roles file stops start-up instead of failing at issue time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from deskgate.config import load_model, packaged
from deskgate.scopes.catalogue import SCOPES
from deskgate.server.errors import ConfigError, InvalidArguments

__all__ = ["Roles", "load_roles"]


def _known_scope(name: str) -> str:
    if name not in SCOPES:
        raise ValueError(f"unknown scope {name!r} (not in the scope catalogue)")
    return name


RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
ScopeName = Annotated[str, AfterValidator(_known_scope)]


class _Role(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1)
    includes: list[RoleName] = []
    scopes: list[ScopeName] = []


class _RolesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: dict[RoleName, _Role] = Field(min_length=1)


class Roles:
    """Role name -> the full set of scopes it grants (inclusions resolved)."""

    def __init__(self, grants: Mapping[str, frozenset[str]]) -> None:
        self._grants = dict(grants)

    def grants(self) -> Mapping[str, frozenset[str]]:
        """Every role and the scopes it grants (for the manifest's review document)."""
        return dict(self._grants)

    def scopes_of(self, role: str) -> frozenset[str]:
        try:
            return self._grants[role]
        except KeyError:
            raise InvalidArguments(f"unknown role {role!r}; known roles: {', '.join(sorted(self._grants))}") from None


def load_roles(path: Path | None = None, text: str | None = None) -> Roles:
    """Load and check a roles file (default: the packaged `config/roles.toml`), or its `text`."""
    source = path or packaged("roles.toml")
    parsed = load_model(source, _RolesFile, text=text)
    grants: dict[str, frozenset[str]] = {}

    def resolve(name: str, trail: tuple[str, ...]) -> frozenset[str]:
        if name in trail:
            raise ConfigError(f"roles include each other in a cycle: {' -> '.join((*trail, name))}", file=str(source))
        if name in grants:
            return grants[name]
        role = parsed.roles.get(name)
        if role is None:
            raise ConfigError(f"role {trail[-1]!r} includes unknown role {name!r}", file=str(source))
        granted = frozenset(role.scopes).union(*(resolve(i, (*trail, name)) for i in role.includes))
        if not granted:
            raise ConfigError(f"role {name!r} grants no scope", file=str(source))
        grants[name] = granted
        return granted

    for name in parsed.roles:
        resolve(name, ())
    return Roles(grants)
