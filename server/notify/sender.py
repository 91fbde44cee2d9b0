"""The notifier: one daemon thread per server process that turns audit records into outbox rows and
delivers the due rows, signed. It shares nothing with the guard chain but the databases: a slow or
dead receiver delays only this thread.

    follow   each new audit record (files or the PostgreSQL table) -> `events_of` -> outbox rows
    deliver  whenever the log is quiet: POST each due row, signed; 2xx -> delivered, else backoff

Signature (verification recipe in docs/CONSOLE.md):
    Deskgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2

from deskgate.server.audit.postgres import follow_table, last_table_records
from deskgate.server.audit.reader import follow, last_records
from deskgate.server.errors import ConfigError
from deskgate.server.notify.events import Event, events_of
from deskgate.server.notify.outbox import Outbox, Pending, Row
from deskgate.server.settings import Paths, Settings, WebhookSection, database_url
from deskgate.server.store.db import Database

logger = logging.getLogger("deskgate.notify")
POLL_SECONDS = 0.5
SEND_TIMEOUT = 5.0


def signature(secret: bytes, body: bytes, t: int) -> str:
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def webhook_name(hook: WebhookSection) -> str:
    return hashlib.sha256(hook.url.encode()).hexdigest()[:16]


class _Stopped(Exception):
    pass


class Notifier:
    def __init__(self, settings: Settings, paths: Paths, db: Database, *, public_url: str) -> None:
        self._hooks = {webhook_name(h): h for h in settings.webhooks}
        self._secrets: dict[str, bytes] = {}
        for name, hook in self._hooks.items():
            secret = os.environ.get(hook.secret_env, "")
            if len(secret) < 16:
                raise ConfigError(f"webhook {hook.url}: set {hook.secret_env} to a secret of 16 characters or more")
            self._secrets[name] = secret.encode()
        self._paths, self._db, self._public_url = paths, db, public_url.rstrip("/")
        self._outbox = Outbox(db)
        self._outbox.upgrade()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskgate-notifier", daemon=True)
        self._http = httpx2.Client(timeout=SEND_TIMEOUT, follow_redirects=False)
        self._seen = self._saved = 0

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SEND_TIMEOUT + 5)
        self._http.close()

    # -- follow -------------------------------------------------------------------------------------

    def _records(self, wait: Callable[[], None], after: int) -> Iterator[dict[str, Any]]:
        if database_url():
            return follow_table(self._db, wait, after_seq=after)
        return follow(self._paths.audit_dir, wait, after_seq=after)

    def _head(self) -> int:
        """Where a first start begins: at the log's end (past events are not news)."""
        if database_url():
            last = last_table_records(self._db, 1, lambda _: True)
        else:
            last = last_records(self._paths.audit_dir, 1, lambda _: True) if self._paths.audit_dir.exists() else []
        return int(last[-1].get("seq", 0)) if last else 0

    def _run(self) -> None:
        try:
            cursor = self._outbox.cursor()
            if cursor is None:
                cursor = self._head()
                self._outbox.add([], seq=cursor, now=int(time.time()))
            self._seen = self._saved = cursor
            for record in self._records(self._quiet, cursor):
                self._seen = max(self._seen, int(record.get("seq") or 0))
                wanted = [row for event in events_of(record) for row in self._rows_for(event)]
                if wanted:
                    self._outbox.add(wanted, seq=self._seen, now=int(time.time()))
                    self._saved = self._seen
        except _Stopped:
            return
        except Exception:  # the notifier must never take the server down; it says so and stops
            logger.exception("the webhook notifier stopped")

    def _quiet(self) -> None:
        """The log has nothing new: record how far it was read, deliver what is due, then wait a little."""
        if self._stop.is_set():
            raise _Stopped
        if self._seen > self._saved:
            self._outbox.add([], seq=self._seen, now=int(time.time()))
            self._saved = self._seen
        self.deliver_due()
        if self._stop.wait(POLL_SECONDS):
            raise _Stopped

    def _rows_for(self, event: Event) -> list[Row]:
        body = json.dumps({
            "event": event.name, "id": hashlib.sha256(event.key.encode()).hexdigest()[:24],
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "object": event.object,
            "link": f"{self._public_url}{event.link}", "text": f"{event.text} {self._public_url}{event.link}",
        }, sort_keys=True)
        return [Row(name, event.name, event.key, body) for name, hook in self._hooks.items()
                if event.name in hook.events]

    # -- deliver ------------------------------------------------------------------------------------

    def deliver_due(self) -> None:
        for pending in self._outbox.lease_due(now=int(time.time())):
            self._send(pending)

    def _send(self, pending: Pending) -> None:
        hook = self._hooks.get(pending.webhook)
        if hook is None:  # a webhook removed from the configuration: its rows wait for it to come back
            return
        body = pending.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "deskgate-webhooks",
                   "Deskgate-Signature": signature(self._secrets[pending.webhook], body, int(time.time()))}
        try:
            answer = self._http.post(hook.url, content=body, headers=headers)
            error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
        except httpx2.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            self._outbox.delivered(pending.id, now=int(time.time()))
        else:
            self._outbox.failed(pending, error, now=int(time.time()))


def start_notifier(settings: Settings, paths: Paths, db: Database, *, public_url: str) -> Notifier | None:
    """The process's notifier, started; None when no webhook is configured."""
    if not settings.webhooks:
        return None
    return Notifier(settings, paths, db, public_url=public_url).start()
