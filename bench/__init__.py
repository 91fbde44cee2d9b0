"""deskgate's performance suite: every figure a ratio to a baseline measured in the same run.

    python -m bench.run [--quick]          the first five below, results in bench/results/chain.md

Modules, one question each, each run as `python -m bench.<name>` from the repository root against the
installed `deskgate`, in throwaway directories it creates; each takes `--smoke` (a second or so of
measuring, which tests/bench/test_smoke.py runs in CI):
    overhead      latency of `get_order` through the guard chain vs a bare MCP server (HTTP, memory)
    throughput    calls/s at 1, 16 and 64 concurrent clients (read and write mixes); reads vs backend size
    components    token verification (cold, cached) and confirmation issue + redeem, per second
    hotpath       where a call's time goes (pyinstrument profiles)
    audit         audit appends vs raw fsync, and verify speed
    scale_out     calls/s with 1, 2 and 4 processes on PostgreSQL vs 1 on SQLite (needs a PostgreSQL URL)
    redaction     redaction MB/s (needs the `bench` extra)

`servers` and `bare` are not benchmarks: the server processes under test and the bare baseline server.
Benchmarks are measurements, never assertions.
"""
