"""Reading for people: following a live log across rotations, and printing it safely."""

from __future__ import annotations

import pytest

from deskgate.server.audit.reader import follow, safe_text


class _Stop(Exception):
    pass


def test_follow_yields_new_records_as_they_are_appended_even_across_a_rotation(kit) -> None:
    """Each time the follower runs dry, the test appends more: it sees exactly the new records."""
    log = kit.open(rotate_bytes=4096)
    kit.fill(log, 3)
    rounds = iter([40, 40])

    def wait() -> None:  # called when there is nothing new: append the next round, or stop
        try:
            kit.fill(log, next(rounds))
        except StopIteration:
            raise _Stop from None

    seen: list[int] = []
    with pytest.raises(_Stop):
        for record in follow(kit.dir, wait, after_seq=3):
            seen.append(record["seq"])
    log.close()
    assert seen == list(range(4, 84))
    assert len(list(kit.dir.glob("audit-*.jsonl"))) > 1


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text, ünïcode", "plain text, ünïcode"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("line\nbreak\r", "line\\x0abreak\\x0d"),
    ("\u202eevil\u200b", "\\u202eevil\\u200b"),
    ("back\\slash", "back\\\\slash"),
    ("\x9b2J", "\\x9b2J"),
])
def test_safe_text_escapes_everything_a_terminal_would_act_on(text, shown) -> None:
    """C0/C1 controls, bidi overrides and zero-width characters become visible escapes."""
    assert safe_text(text) == shown
