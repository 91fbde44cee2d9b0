"""The servers under test, each in its own process on a loopback port, and the clients that call them.

Child side (`python -m bench.servers --kind KIND --home DIR --policy FILE`): binds a listening socket
on 127.0.0.1 port 0, prints `{"port": N}` on stdout, then serves with uvicorn as
`deskgate serve --transport http` does. The socket listens before the port is announced, so the
first request queues in the backlog until the app is up: no polling, no sleep.

Kinds: `deskgate` (the HTTP app as `deskgate serve` builds it), `deskgate-unredacted` (the
same with `UnsafeNoRedaction` in the chain: BENCHMARK ONLY, for redaction's share of a call), `bare` and
`bare-auth` (`bench.bare`: the same backend read with nothing, or only a bearer check, around it).

With `--stdio` a deskgate kind serves MCP over stdio instead, one session with its token from
DESKGATE_TOKEN, as `deskgate serve --transport stdio` does.

Parent side: `serving(kind, home)` starts the child, reads the port (bounded by a timeout) and
terminates the child on exit (`serving_all`: several kinds, started side by side);
`connected_stdio(kind, home, policy, token)` starts a stdio child and connects to it;
`connected(target, token)` opens an `mcp.Client` - in memory when given an `MCPServer`, over
Streamable HTTP (httpx2) when given a URL; `call_ok` calls a tool and stops the run if it did not
succeed (a benchmark of refusals measures nothing).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import anyio
import httpx2
from anyio.abc import Process
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from bench._common import apply_bench_environment, bench_environment
from deskgate.server.redaction.redactor import Redactor

Kind = Literal["deskgate", "deskgate-unredacted", "bare", "bare-auth"]
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
HTTP_TIMEOUT = 60.0


class UnsafeNoRedaction(Redactor):
    """BENCHMARK ONLY - NEVER SERVE AGENTS WITH THIS: results and audit arguments pass through UNREDACTED.

    It exists to measure what redaction costs (`bench.redaction`): the same chain with and without it.
    """

    def __init__(self) -> None:  # no policy, no key: it redacts nothing
        logging.getLogger("bench").warning("UnsafeNoRedaction: tool results and audit arguments are NOT redacted "
                                           "(benchmark only)")

    def redact_output(self, data: dict[str, Any], pii_map: Any, scopes: Any, supplied: Any = None) -> dict[str, Any]:
        return data

    def redact_for_audit(self, data: dict[str, Any], pii_map: Any) -> dict[str, Any]:
        return data


# --- child ----------------------------------------------------------------------------------

def _listening_socket() -> socket.socket:
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle), drowning what we measure.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only
    sock.listen(1024)
    return sock


def _runtime(kind: Kind, home: Path, policy: Path) -> Any:
    """The deskgate runtime a server kind serves."""
    from deskgate.server.runtime import Runtime
    from deskgate.server.settings import Paths

    runtime = Runtime.open(Paths(home), policy_path=policy)
    if kind == "deskgate-unredacted":
        runtime.redactor = UnsafeNoRedaction()
        runtime.wire(policy_path=policy)  # the chain rebuilt as `open` built it, over the pass-through
    return runtime


def _serve_stdio(kind: Kind, home: Path, policy: Path) -> None:
    """As `deskgate serve --transport stdio` serves: one session, its token from DESKGATE_TOKEN."""
    from deskgate.server.mcp_app import build_mcp_server, fixed_credential

    runtime = _runtime(kind, home, policy)
    try:
        credential = fixed_credential(runtime.authenticator, os.environ["DESKGATE_TOKEN"])
        anyio.run(build_mcp_server(runtime.chain, credential).run_stdio_async)
    finally:
        anyio.run(runtime.aclose)


def _serve(kind: Kind, home: Path, policy: Path, profile: Path | None) -> None:
    import uvicorn

    from bench.bare import OneCheckVerifier, build_bare_server
    from deskgate.scopes.keys import SigningKeys
    from deskgate.server.http_app import build_http_app
    from deskgate.server.settings import Paths, load_settings
    from deskgate.server.store.db import open_database
    from deskgate.tools.backend.sql import SqlSupportBackend

    sock = _listening_socket()
    if kind.startswith("deskgate"):
        runtime = _runtime(kind, home, policy)
        app = build_http_app(runtime, host="127.0.0.1")
        close = functools.partial(anyio.run, runtime.aclose)
    else:
        db = open_database(None, Paths(home).backend_db)
        verifier = None
        if kind == "bare-auth":
            tokens = load_settings(Paths(home)).tokens
            verifier = OneCheckVerifier(SigningKeys(Paths(home), tokens), tokens.audience, tokens.issuer)
        bare = build_bare_server(SqlSupportBackend(db), verifier=verifier)
        app = bare.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
        close = db.close
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False))
    # uvicorn re-raises a SIGTERM it shut down for with the handler it found; the default one
    # would end the process before `close()` runs (and the audit log's shutdown checkpoint with it).
    signal.signal(signal.SIGTERM, _exit)
    profiler = _profiler() if profile else None
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    try:
        server.run(sockets=[sock])  # returns on SIGTERM, after a graceful shutdown
    finally:
        close()
        if profiler is not None and profile is not None:
            profiler.stop()
            profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")  # every thread's samples, not one task's
    profiler.start()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description="one server under test (started by the benchmarks)")
    parser.add_argument("--kind", choices=get_args(Kind), required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile here at exit")
    parser.add_argument("--stdio", action="store_true", help="serve MCP over stdio (deskgate kinds only)")
    parser.add_argument("--database-url", default=None, help="serve from this PostgreSQL (deskgate kinds only; "
                                                              "default the embedded SQLite)")
    args = parser.parse_args()
    apply_bench_environment()  # drops a DESKGATE_DATABASE_URL the caller had: only --database-url sets one
    if args.database_url:
        os.environ["DESKGATE_DATABASE_URL"] = args.database_url
    if args.stdio:
        _serve_stdio(args.kind, args.home, args.policy)
    else:
        _serve(args.kind, args.home, args.policy, args.profile)


# --- parent ---------------------------------------------------------------------------------

@asynccontextmanager
async def serving(kind: Kind, home: Path, policy: Path, *, profile: Path | None = None) -> AsyncIterator[str]:
    """Run one server process; yields its MCP endpoint URL. With `profile`, a pyinstrument report lands there."""
    async with serving_all([kind], home, policy, profile=profile) as (url,):
        yield url


@asynccontextmanager
async def serving_all(kinds: Sequence[Kind], home: Path, policy: Path, *,
                      profile: Path | None = None) -> AsyncIterator[list[str]]:
    """Run one server process per kind, all started before any is waited for (their start-ups overlap);
    yields their MCP endpoint URLs in the order of `kinds`."""
    async with AsyncExitStack() as stack:
        started = []
        for kind in kinds:
            command = [sys.executable, "-m", "bench.servers", "--kind", kind, "--home", str(home),
                       "--policy", str(policy), *(["--profile", str(profile)] if profile is not None else [])]
            process = await anyio.open_process(command, cwd=REPO, env=bench_environment(), stdout=subprocess.PIPE,
                                               stderr=None)
            stack.push_async_callback(process.aclose)
            stack.push_async_callback(stop, process)  # runs first: callbacks unwind last in, first out
            started.append(process)
        with anyio.fail_after(START_TIMEOUT):
            urls = [await announced_url(process) for process in started]
        yield urls


@asynccontextmanager
async def connected_stdio(kind: Kind, home: Path, policy: Path, token: str) -> AsyncIterator[Client]:
    """An MCP client over stdio to a server child of `kind` it starts (and stops on exit)."""
    params = StdioServerParameters(
        command=sys.executable, cwd=str(REPO), env={**bench_environment(), "DESKGATE_TOKEN": token},
        args=["-m", "bench.servers", "--kind", kind, "--home", str(home), "--policy", str(policy), "--stdio"])
    async with Client(params) as client:
        yield client


async def announced_url(process: Process) -> str:
    """The MCP URL a server child announces (one JSON line with its port) once its socket listens."""
    assert process.stdout is not None
    announced = b""
    while not announced.endswith(b"\n"):
        announced += await process.stdout.receive()
    return f"http://127.0.0.1:{json.loads(announced)['port']}/mcp"


async def stop(process: Process) -> None:
    """SIGTERM (the server drains its audit log and exits 0), SIGKILL if it does not within STOP_TIMEOUT."""
    process.terminate()
    with anyio.move_on_after(STOP_TIMEOUT) as waited:
        await process.wait()
    if waited.cancelled_caught:
        process.kill()
        await process.wait()


class UnexpectedResult(RuntimeError):
    """A benchmarked call did not succeed: the run would measure refusals, so it stops."""


async def call_ok(client: Client, kind: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    """Call a tool and insist on success (deskgate, with or without redaction: `status` ok; bare: not an error)."""
    result = await client.call_tool(tool, arguments)
    enveloped = kind.startswith("deskgate")
    status = (result.structured_content or {}).get("status") if enveloped else None
    if result.is_error or (enveloped and status != "ok"):
        detail = result.structured_content or [c.model_dump() for c in result.content]
        raise UnexpectedResult(f"{kind} {tool} did not succeed: {detail}")
    return result


@asynccontextmanager
async def connected(target: MCPServer | str, token: str | None = None) -> AsyncIterator[Client]:
    """An MCP client for an in-memory server or an HTTP endpoint (with the bearer token, if any)."""
    if isinstance(target, MCPServer):
        async with Client(target) as client:
            yield client
        return
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # The SDK leaves a client it was given open: this one is closed here.
    async with httpx2.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT) as http, \
            Client(streamable_http_client(target, http_client=http)) as client:
        yield client

if __name__ == "__main__":
    main()
