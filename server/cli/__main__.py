"""`python -m deskgate.server.cli` is `deskgate` (used where the console script is not on PATH)."""

from deskgate.server.cli import main

main()
