"""The audit log: every call, append-only, hash-chained, signed, crash-safe, verifiable.

    records      what a record is: canonical JSON line, chain hash, event validation
    batching     group commit: one writer thread, one fsync (or commit) per batch
    log          AuditLog - JSON Lines segments under flock, rotation, torn-tail recovery
    postgres     PostgresAuditLog - the same chain in one table, for several processes
    segments     the directory's files and the durable low-level operations on them
    keys         the Ed25519 audit key (never the token key)
    checkpoints  signed heads, kept locally and shipped to an external anchor
    verify       the verification protocol behind `deskgate audit verify`
    reader       tail / follow / export, terminal-safe
    report       the scorecard behind `deskgate report`
"""
