"""Component costs: session-token verification and confirmation tokens, per second.

    python -m bench.components [--seconds 2] [--dir DIR] [--smoke]

Baselines, measured in the same run with the same Ed25519 key:
    - token verification against a bare PyJWT EdDSA check (`jwt.decode` with the algorithm pinned):
      what a server whose only control is a JWT costs. deskgate's cold path adds the RFC 8725
      checks (header, claim shapes, lifetime, scopes) and the revocation lookup in the state
      store; the cached path skips the checks that depend only on the token bytes but still looks
      up revocation on every call.
    - confirmation issue + redeem against PyJWT sign + verify of the same claims: deskgate adds the
      binding checks and the single-use record (an fsync'd INSERT in the state store).
Audit appends are measured by `bench.audit`, redaction by `bench.redaction`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import jwt

from bench._common import SMOKE_HELP, Home, Table, prepare_home, scratch
from deskgate.scopes.tokens import ALGORITHM, TokenVerifier
from deskgate.server.policy.confirmation import AUDIENCE, Binding, Confirmations
from deskgate.server.runtime import Runtime

MAX_OPERATIONS = 200_000  # a bound on every loop, whatever the clock does


async def rate(operation: Callable[[int], Awaitable[object]], seconds: float, *, workers: int = 1) -> float:
    """Operations per second with `workers` concurrent tasks, for about `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        n = index
        while time.perf_counter() < deadline and done < MAX_OPERATIONS:
            await operation(n)
            done += 1
            n += workers

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(workers):
            tg.start_soon(worker, index)
    return done / (time.perf_counter() - started)


async def token_rates(runtime: Runtime, token: str, seconds: float) -> dict[str, float]:
    public = runtime.keys.signing_key()[1].public_key()
    tokens = runtime.settings.tokens
    cold = TokenVerifier(runtime.keys, runtime.state.tokens, tokens, cache_size=0)  # every call misses the cache
    await runtime.verifier.verify(token)  # warm the cached one

    async def pyjwt_only(_: int) -> object:
        return jwt.decode(token, public, algorithms=[ALGORITHM], audience=tokens.audience, issuer=tokens.issuer)

    async def deskgate_cold(_: int) -> object:
        return await cold.verify(token)

    async def deskgate_cached(_: int) -> object:
        return await runtime.verifier.verify(token)

    return {
        "PyJWT EdDSA decode (baseline)": await rate(pyjwt_only, seconds),
        "deskgate verify, cold (checks + revocation)": await rate(deskgate_cold, seconds),
        "deskgate verify, cached (revocation only)": await rate(deskgate_cached, seconds),
    }


def _confirmations(runtime: Runtime) -> Confirmations:
    """Built as the policy stage builds them: the server's signing key, the state store's redemptions."""
    kid, key = runtime.keys.signing_key()
    return Confirmations(signing_key=key, kid=kid, verify_keys={r.kid: r.public_key() for r in runtime.keys.records()},
                         redemptions=runtime.state.redemptions, issuer=runtime.settings.tokens.issuer,
                         ttl=runtime.policy.confirmation.ttl)


async def confirmation_rates(runtime: Runtime, seconds: float) -> dict[str, float]:
    confirmations = _confirmations(runtime)
    kid, private = runtime.keys.signing_key()
    public = private.public_key()
    issuer = runtime.settings.tokens.issuer

    def binding(n: int) -> Binding:
        return Binding(sid="bench-session-000000", sub="bench", tool="issue_refund", args_digest=f"{n:064x}",
                       manifest_hash="m" * 64, policy_version="bench")

    async def pyjwt_only(n: int) -> object:
        now = int(time.time())
        claims = {"iss": issuer, "aud": AUDIENCE, "sub": "bench", "sid": "bench-session-000000", "tool": "issue_refund",
                  "dig": f"{n:064x}", "mh": "m" * 64, "pv": "bench", "ck": "agent", "iat": now, "exp": now + 120,
                  "jti": f"j{n}"}
        token = jwt.encode(claims, private, algorithm=ALGORITHM, headers={"typ": "dg-confirm+jwt", "kid": kid})
        return jwt.decode(token, public, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=issuer)

    async def issue_and_redeem(n: int) -> object:
        now = int(time.time())
        issued = confirmations.issue(binding(n), now=now)
        return await confirmations.redeem(issued.token, binding(n), now=now)

    return {
        "PyJWT EdDSA sign + verify (baseline)": await rate(pyjwt_only, seconds),
        "deskgate issue + redeem, 1 at a time": await rate(issue_and_redeem, seconds),
        "deskgate issue + redeem, 16 concurrent": await rate(issue_and_redeem, seconds, workers=16),
    }


def _rows(out: Table, rates: dict[str, float]) -> None:
    baseline = next(iter(rates.values()))
    for name, value in rates.items():
        out.add(name, f"{value:,.0f}", f"{value / baseline:.2f}x", f"{1e6 / value:,.1f}")


async def run(home: Home, *, seconds: float) -> Table:
    out = Table("Component costs (operations/s, higher is better)",
                ["operation", "per second", "vs baseline", "us each"],
                note="Baselines: PyJWT alone with the same Ed25519 key. A redeem is an fsync'd INSERT (single use "
                     "across processes); concurrent redeems share SQLite's one writer.")
    runtime = home.open_runtime()
    try:
        _rows(out, await token_rates(runtime, home.tokens[0], seconds))
        _rows(out, await confirmation_rates(runtime, seconds))
    finally:
        await runtime.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.seconds = 0.1
    with scratch(args.dir, "components") as root:
        anyio.run(_show, root, args.seconds)


async def _show(root: Path, seconds: float) -> None:
    home = await prepare_home(root, 100, sessions=1)
    (await run(home, seconds=seconds)).show()


if __name__ == "__main__":
    main()
