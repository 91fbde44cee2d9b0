"""A real deskgate (runtime, seeded demo backend, keys, audit log) and real MCP clients against it.

`deployment` runs each test on SQLite and, when DESKGATE_TEST_DATABASE_URL is set, on PostgreSQL
(a fresh schema per test). Clients are the SDK's own `mcp.Client`, in memory here; the transport
tests start `deskgate serve` as a separate process (stdio and HTTP on loopback).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client

from deskgate.server.mcp_app import build_mcp_server, fixed_credential
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from deskgate.tools.backend.seed import DEMO, DemoScenario, seed_demo

PG_URL = os.environ.get("DESKGATE_TEST_DATABASE_URL")


@dataclass
class Deployment:
    runtime: Runtime
    home: Path
    demo: DemoScenario
    database_url: str | None

    def token(self, role: str | None = "billing-agent", *, scopes: set[str] | None = None, sub: str = "agent-1",
              ttl: int = 1800, **bindings: Any) -> str:
        granted = set(scopes) if scopes is not None else set(self.runtime.roles.scopes_of(role or ""))
        token, _ = self.runtime.issuer.issue(sub, granted, ttl, **bindings)
        return token

    @asynccontextmanager
    async def client(self, token: str | None) -> AsyncIterator[Client]:
        server = build_mcp_server(self.runtime.chain, fixed_credential(self.runtime.authenticator, token))
        async with Client(server) as client:
            yield client

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the support backend directly, to check real side effects."""
        return self.runtime.backend_db.read_sync(lambda tx: tx.query(sql, params))

    def audit_text(self) -> str:
        """The whole audit chain as text: the JSON Lines files, or the PostgreSQL table."""
        if self.database_url:
            rows = self.runtime.state_db.read_sync(lambda tx: tx.query("SELECT record FROM audit_log ORDER BY seq"))
            return "".join(f"{r[0]}\n" for r in rows)
        return "".join(p.read_text() for p in sorted((self.home / "audit").glob("*.jsonl")))

    def audit_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_text().splitlines() if line.strip()]


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool and return its structured result (the `Outcome` envelope)."""
    result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None, f"{tool} returned no structured content"
    return result.structured_content


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    if request.param == "sqlite":
        monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
        yield None
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: DESKGATE_TEST_DATABASE_URL is not set (.ci/run sets it)")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    monkeypatch.setenv("DESKGATE_DATABASE_URL", url)
    try:
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DESKGATE_HOME", str(home))
    # No OS keyring on test machines: the key file fallback is what runs (and is tested) here.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("DESKGATE_SIGNING_KEY", raising=False)
    return home


@asynccontextmanager
async def deployed(home: Path, engine: str | None, overrides: str = "") -> AsyncIterator[Deployment]:
    """A seeded deployment in `home`; `overrides` is its deskgate.toml (settings a test changes)."""
    if overrides:
        home.mkdir(parents=True, exist_ok=True)
        (home / "deskgate.toml").write_text(overrides)
    runtime = Runtime.open(Paths(home))
    seed_demo(runtime.backend_db, customers=40, seed=42)
    try:
        yield Deployment(runtime, home, DEMO, engine)
    finally:
        await runtime.aclose()


@pytest.fixture
async def deployment(home: Path, engine: str | None) -> AsyncIterator[Deployment]:
    async with deployed(home, engine) as deployment:
        yield deployment


CLI = [sys.executable, "-m", "deskgate.server.cli"]


def server_env(d: Deployment, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
    env.update(DESKGATE_HOME=str(d.home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    if d.database_url:
        env["DESKGATE_DATABASE_URL"] = d.database_url
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(deployment: Deployment) -> Iterator[str]:
    """`deskgate serve --transport http` in its own process; yields its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                            env=server_env(deployment), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(_wait_until_up, base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def _wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(30):
        async with httpx2.AsyncClient() as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        return
                except httpx2.TransportError:
                    await anyio.sleep(0.1)  # readiness polling of a starting process, not synchronisation
