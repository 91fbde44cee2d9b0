"""deskgate's performance suite: every figure a ratio to a baseline measured in the same run.

    python -m bench.run [--quick]          everything below, results in bench/results/chain.md

Modules, one question each:
    overhead      latency of `get_order` through the guard chain vs a bare MCP server (HTTP, memory)
    throughput    calls/s at 1, 16 and 64 concurrent clients (read and write mixes); reads vs backend size
    components    token verification (cold, cached) and confirmation issue + redeem, per second
    hotpath       where a call's time goes (pyinstrument)
    audit         audit appends vs raw fsync (its own script: `python bench/audit.py`)
    redaction     redaction MB/s (its own script: `python bench/redaction.py`)

Benchmarks are measurements, never assertions: nothing here is collected by pytest.
"""
