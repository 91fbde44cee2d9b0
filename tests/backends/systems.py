"""The real external systems the adapter tests and the backends benchmark start: localstripe (a stateful
Stripe emulator from PyPI) and django-helpdesk (the minimal project in tests/helpdesk_site, on SQLite).

localstripe binds every interface (it has no host option); only loopback traffic is ever sent to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import anyio
import httpx2
import stripe

from tests.e2e.test_transports import free_port

STRIPE_KEY = "sk_test_deskgate_contract"  # localstripe accepts any test-mode key


@dataclass(frozen=True)
class LocalStripe:
    url: str

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": self.url}, max_network_retries=0)


def wait_until_answering(url: str, proc: subprocess.Popen[bytes], headers: dict[str, str]) -> None:
    """Until `url` answers at all (any status), or `proc` exits: readiness of a process the tests started."""

    async def poll() -> None:
        with anyio.fail_after(60):
            async with httpx2.AsyncClient() as http:
                while proc.poll() is None:
                    try:
                        await http.get(url, headers=headers)
                        return
                    except httpx2.TransportError:
                        await anyio.sleep(0.1)  # readiness polling of a starting process, not synchronisation
        raise RuntimeError(f"the process serving {url} exited")

    in_own_thread(poll)


def in_own_thread(fn: Callable[[], Any]) -> None:
    """Run an async readiness check to the end on a thread of its own (a fixture may be set up inside a
    running event loop)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(fn)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


@contextmanager
def start_localstripe(where: Path) -> Iterator[LocalStripe]:
    """`localstripe --port PORT --from-scratch` on a free port; stopped on exit."""
    port = free_port()
    exe = Path(sys.executable).with_name("localstripe")
    proc = subprocess.Popen([str(exe), "--port", str(port), "--from-scratch"], cwd=where,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/v1/customers", proc, {"Authorization": f"Bearer {STRIPE_KEY}"})
        yield LocalStripe(url)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def stripe_settings(url: str, **extra: object) -> str:
    lines = ["[backends.billing]", 'kind = "stripe"', f'api_base = "{url}"', 'api_key_env = "STRIPE_API_KEY"']
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Helpdesk:
    url: str
    token: str
    queue: int
    human_queue: int

    def http(self) -> httpx2.Client:
        return httpx2.Client(base_url=f"{self.url}/api/", headers={"Authorization": f"Token {self.token}"},
                             timeout=30)


REPOSITORY = Path(__file__).resolve().parents[2]
SITE = REPOSITORY / "tests" / "helpdesk_site"


def _site_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
    env.update(DJANGO_SETTINGS_MODULE="tests.helpdesk_site.settings", HELPDESK_SITE_DB=str(db),
               PYTHONPATH=str(REPOSITORY))
    return env


def _bootstrap(db: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "tests.helpdesk_site.bootstrap", *args], env=_site_env(db),
                          cwd=REPOSITORY, capture_output=True, check=True, timeout=600, text=True).stdout


def migrated_template(cache: Path) -> Path:
    """A freshly migrated helpdesk database in `cache`, built once per set of installed distributions and
    site settings (migrating django-helpdesk takes half a minute; copying the result takes none).

    Built beside its final name and renamed into place, so concurrent sessions never see half a file."""
    installed = sorted(f"{d.metadata['Name']}=={d.version}".lower() for d in distributions())
    key = hashlib.sha256("\n".join([*installed, (SITE / "settings.py").read_text()]).encode()).hexdigest()[:16]
    template = cache / f"helpdesk-{key}.sqlite3"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        building = cache / f"building-{os.getpid()}-{key}.sqlite3"
        building.unlink(missing_ok=True)
        _bootstrap(building, "migrate")
        os.replace(building, template)
        for stale in cache.glob("helpdesk-*.sqlite3"):
            if stale != template:
                stale.unlink(missing_ok=True)
    return template


@contextmanager
def start_helpdesk(where: Path, cache: Path | None = None) -> Iterator[Helpdesk]:
    """django-helpdesk on a fresh SQLite file (a copy of the migrated template kept in `cache`, or migrated
    in `where`): an API superuser's token, a support and a human queue."""
    db = where / "db.sqlite3"
    shutil.copyfile(migrated_template(cache or where / "template"), db)
    made = json.loads(_bootstrap(db))
    env = _site_env(db)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
                            env=env, cwd=REPOSITORY, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    try:
        wait_until_answering(f"{url}/api/tickets/", proc, {"Authorization": f"Token {made['token']}"})
        yield Helpdesk(url, made["token"], made["queue"], made["human_queue"])
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def helpdesk_settings(hd: Helpdesk, url: str | None = None, **extra: object) -> str:
    lines = ["[backends.tickets]", 'kind = "helpdesk"', f'url = "{url or hd.url}"', 'token_env = "HELPDESK_TOKEN"',
             f"queue = {hd.queue}", f"human_queue = {hd.human_queue}"]
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n"
