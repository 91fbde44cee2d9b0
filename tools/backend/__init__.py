"""The support backend the tools act on.

    base.py       `SupportBackend`: the interface a company implements over its real systems
    sql.py        `SqlSupportBackend`: the demo backend on SQLite or PostgreSQL
    schema.py     its tables and indexes (migrations of component "backend")
    seed.py       `seed_demo`: deterministic demo data and the fixed scenario objects `DEMO`
    demo_data.py  the word lists and ticket texts the seed draws from
"""

from deskgate.tools.backend.base import SupportBackend
from deskgate.tools.backend.seed import DEMO, SeedReport, demo_summary, seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend

__all__ = ["DEMO", "SeedReport", "SqlSupportBackend", "SupportBackend", "demo_summary", "seed_demo"]
