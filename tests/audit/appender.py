"""A separate process appending to an audit directory, for the multi-process and crash tests.

    python appender.py DIR COUNT THREADS [PAD]

Appends COUNT records from THREADS threads (PAD bytes of filler each, to make writes long) and
prints each acknowledged seq on its own line, flushed, the moment `append_sync` returns it.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from deskgate.server.audit.log import AuditLog
from deskgate.server.settings import AuditSection


def main() -> None:
    directory, count, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    pad = "x" * (int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    log = AuditLog(directory, AuditSection(checkpoint_every_records=50, rotate_bytes=64 * 1024))
    out = threading.Lock()

    def work(worker: int) -> None:
        for i in range(worker, count, threads):
            seq = log.append_sync({"kind": "call", "tool": "lookup_order", "status": "ok",
                                   "request_id": f"p{worker}-{i}", "args": {"pad": pad}})
            with out:
                sys.stdout.write(f"{seq}\n")
                sys.stdout.flush()

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()


if __name__ == "__main__":
    main()
