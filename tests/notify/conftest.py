"""The e2e fixtures the webhook tests build on: a state directory and the engine (SQLite, PostgreSQL)."""

from __future__ import annotations

from tests.e2e import conftest as e2e

home, engine = e2e.home, e2e.engine
