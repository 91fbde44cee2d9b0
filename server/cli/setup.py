"""`deskgate init`, `serve`, `demo` and `db upgrade`: set up a state directory and run the server."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Literal

import anyio
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deskgate.server.errors import ConfigError, DeskgateError
from deskgate.server.settings import Paths, parse_duration

if TYPE_CHECKING:
    from deskgate.server.runtime import Runtime

err = Console(stderr=True)


def _logging(verbose: bool) -> None:
    """Logs go to stderr (stdout is the MCP stream on stdio), every record masked as it is made."""
    from deskgate.server.redaction.logfilter import RedactingFilter, install

    install()

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def init(
    demo: Annotated[bool, typer.Option("--demo", help="Seed a demo support backend.")] = False,
    customers: Annotated[int, typer.Option(help="Demo size: number of customers (up to 1,000,000).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the deterministic demo generator.")] = 42,
    stripe_url: Annotated[str | None, typer.Option("--stripe", help="With --demo: seed billing into Stripe at "
                                                   "this API base (key in STRIPE_API_KEY).")] = None,
    helpdesk_url: Annotated[str | None, typer.Option("--helpdesk", help="With --demo: seed tickets into this "
                                                     "django-helpdesk (token in HELPDESK_TOKEN).")] = None,
    helpdesk_queues: Annotated[str, typer.Option(help="The helpdesk's customer and human queue ids.")] = "1,2",
) -> None:
    """Create the state directory, the state database, the signing key and (with --demo) demo data.

    Idempotent: running it again changes nothing that exists.
    """
    from deskgate.server.runtime import Runtime
    from deskgate.tools.backend.seed import demo_summary, seed_demo

    if not 1 <= customers <= 1_000_000:
        raise ConfigError("--customers must be between 1 and 1,000,000")
    paths = Paths.from_env()
    runtime = Runtime.open(paths)
    try:
        err.print(f"state directory: {paths.home}")
        err.print(f"state store:     {runtime.state_db.describe()}")
        err.print(f"signing key:     {runtime.keys.where()}")
        err.print(f"audit log:       {paths.audit_dir}")
        if demo:
            with Progress(TextColumn("seeding demo backend"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("seed", total=customers)
                seeded = seed_demo(runtime.backend_db, customers=customers, seed=seed,
                                   progress=lambda done: progress.update(task, completed=done))
            err.print("demo backend:    " + ("seeded" if seeded else "already seeded, unchanged"))
            for line in _connect(paths, runtime, stripe_url, helpdesk_url, helpdesk_queues):
                err.print(line)
            err.print(demo_summary())
        elif stripe_url or helpdesk_url:
            raise ConfigError("--stripe and --helpdesk seed the demo into those systems: add --demo")
    finally:
        anyio.run(runtime.aclose)


def _connect(paths: Paths, runtime: Runtime, stripe_url: str | None, helpdesk_url: str | None,
             queues: str) -> list[str]:
    from deskgate.tools.backend.connect import HelpdeskTarget, connect_demo

    queue, _, human = queues.partition(",")
    if helpdesk_url and not (queue.isdigit() and human.isdigit()):
        raise ConfigError("--helpdesk-queues takes two queue ids, e.g. 1,2")
    target = HelpdeskTarget(helpdesk_url, int(queue), int(human)) if helpdesk_url else None
    return connect_demo(paths, runtime.backend_db, stripe_url=stripe_url, helpdesk=target)


def serve(
    transport: Annotated[str, typer.Option(help="stdio or http.")] = "http",
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default from config, 8750).")] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Development mode: serve even if the manifest differs "
                                      "from the pinned one (says what changed).")] = False,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Also accept this Host header (name, name:port or name:*); repeatable. "
                               "Adds to [server] allowed_hosts.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics at /metrics on this port "
                                                     "(off by default).")] = None,
    metrics_host: Annotated[str, typer.Option(help="Bind address of the metrics listener.")] = "127.0.0.1",
) -> None:
    """Serve MCP over stdio (token from DESKGATE_TOKEN or DESKGATE_TOKEN_FILE) or Streamable HTTP at /mcp.

    Traces: OpenTelemetry, configured by the standard OTEL_* variables (off when none is set)."""
    from deskgate.server.http_security import HostPattern

    if transport not in ("stdio", "http"):
        raise ConfigError("--transport must be stdio or http")
    extra_hosts = tuple(allowed_host or ())
    for entry in extra_hosts:
        try:
            HostPattern.parse(entry)
        except ValueError as exc:
            raise ConfigError(f"--allowed-host: {exc}") from None
    _logging(verbose)
    _serve(transport, host, port, dev, extra_hosts, metrics_host, metrics_port)  # type: ignore[arg-type]


def _serve(transport: Literal["stdio", "http"], host: str | None, port: int | None, dev: bool,
           extra_hosts: tuple[str, ...] = (), metrics_host: str = "127.0.0.1", metrics_port: int | None = None) -> None:
    from deskgate.server import telemetry
    from deskgate.server.manifest.lock import check_served
    from deskgate.server.runtime import Runtime

    paths = Paths.from_env()
    metrics_url = telemetry.start(metrics_host=metrics_host, metrics_port=metrics_port)  # before the chain
    runtime = Runtime.open(paths)
    try:
        telemetry.watch_breakers(lambda: [row[0] for row in runtime.state.breakers.list_sync()])
        if metrics_url:
            err.print(f"deskgate: metrics at {metrics_url}")
        check_served(runtime.manifest, paths, dev=dev, warn=lambda text: err.print(f"[yellow]{text}[/]"))
        runtime.announce_start(transport)
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=_reload_policy, args=(runtime,),
                                                                 name="deskgate-reload", daemon=True).start())
        if transport == "stdio":
            _serve_stdio(runtime)
        else:
            _serve_http(runtime, host or runtime.settings.server.host, port or runtime.settings.server.port,
                        extra_hosts)
    finally:
        anyio.run(runtime.aclose)


def _reload_policy(runtime: Runtime) -> None:
    """SIGHUP: `deskgate policy reload` from inside the server (on a thread: it reads files and the store)."""
    try:
        served = runtime.reload_policy(f"SIGHUP (pid {os.getpid()})")
    except DeskgateError as exc:
        err.print(f"[red]deskgate: policy not reloaded: {exc.diagnostics()}[/]")
        return
    err.print(f"deskgate: published policy {served.stage.version[:12]} (manifest {served.manifest_hash[:12]})")


def _serve_stdio(runtime: Runtime) -> None:
    from deskgate.scopes.authenticator import Refusal
    from deskgate.server.mcp_app import StdioCredential, build_mcp_server
    from deskgate.server.notify.sender import start_notifier

    credential = StdioCredential.from_env(runtime.authenticator, runtime.settings.tokens.max_token_bytes)
    mcp = build_mcp_server(runtime.chain, credential, name=runtime.settings.server.name)

    async def serve() -> None:
        admitted = await credential()
        if isinstance(admitted, Refusal):  # refuse to start without a valid token (the error says why and the fix)
            raise admitted.error
        # Webhooks go out from a stdio server too; their links point at the console the HTTP server serves.
        server = runtime.settings.server
        start_notifier(runtime.settings, runtime.paths, runtime.state_db,
                       public_url=server.served_url(server.host, server.port))
        await mcp.run_stdio_async()

    anyio.run(serve)


def _serve_http(runtime: Runtime, host: str, port: int, extra_hosts: tuple[str, ...]) -> None:
    import uvicorn

    from deskgate.server.http_app import build_http_app
    from deskgate.server.http_security import WILDCARD_ADDRESSES

    app = build_http_app(runtime, host=host, port=port, extra_hosts=extra_hosts)
    url = runtime.settings.server.served_url(host, port)
    err.print(f"deskgate: MCP at {url}/mcp, listening on {host}:{port} (JWKS at /.well-known/jwks.json)")
    if host in WILDCARD_ADDRESSES and not runtime.settings.server.public_url:
        err.print("[yellow]serving on every address without [server] public_url: set it to the URL clients use "
                  "(it is the RFC 9728 resource), or add their Host names with --allowed-host[/]")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found: make that
    # handler an orderly exit, so the caller's `finally` closes the runtime (shutdown audit checkpoint).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # proxy_headers=False: uvicorn would believe X-Forwarded-* from 127.0.0.1; HttpGuard decides instead.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                proxy_headers=False)


def demo(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8750,
    customers: Annotated[int, typer.Option(help="Demo size.")] = 1000,
) -> None:
    """Quick start: init --demo, issue a demo token, print how to connect, serve over HTTP."""
    from deskgate.server.runtime import Runtime

    init(demo=True, customers=customers, seed=42)
    paths = Paths.from_env()
    runtime = Runtime.open(paths)
    try:
        scopes = runtime.roles.scopes_of("billing-agent")
        token, _ = runtime.issuer.issue("demo-agent", scopes, parse_duration("8h"))
    finally:
        anyio.run(runtime.aclose)
    url = f"http://127.0.0.1:{port}/mcp"
    err.print(f"""
[bold]deskgate demo[/] - a billing-agent session token, valid 8h:

{token}

HTTP:  {url}   with header  Authorization: Bearer <token>
stdio: DESKGATE_TOKEN=<token> DESKGATE_HOME={paths.home} deskgate serve --transport stdio
Inspect with the MCP Inspector:  npx @modelcontextprotocol/inspector  (Streamable HTTP, {url}, bearer token)
More tokens: deskgate token issue --sub NAME --role tier1-agent|billing-agent|supervisor
""", highlight=False, soft_wrap=True)
    serve(transport="http", host="127.0.0.1", port=port, dev=False, verbose=False)


def db_upgrade() -> None:
    """Upgrade the state store and demo backend schemas in place (also done at every start)."""
    from deskgate.server.runtime import Runtime

    runtime = Runtime.open(Paths.from_env())
    err.print(f"schemas up to date in {runtime.state_db.describe()}")
    anyio.run(runtime.aclose)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(serve)
    app.command()(demo)
    db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
    db.command("upgrade")(db_upgrade)
    app.add_typer(db, name="db")
