"""The PII classes a field can declare, what a session may see of each, and who can write a field's text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from deskgate.server.errors import ConfigError

Author = Literal["customer", "agent", "system"]
AUTHORS: tuple[Author, ...] = ("customer", "agent", "system")


class PiiClass(StrEnum):
    NONE = "none"              # declared not personal (ids, statuses, amounts shown as text)
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"        # postal address
    DOB = "dob"                # date of birth
    CARD = "card"              # payment card number (or its last four)
    IBAN = "iban"
    NATIONAL_ID = "national_id"
    IP = "ip"
    FREE_TEXT = "free_text"    # customer-written text: scanned by detectors, marked untrusted
    SECRET = "secret"  # noqa: S105 - a class name, not a password; never leaves the server in clear


class Visibility(StrEnum):
    HIDDEN = "hidden"
    MASKED = "masked"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class WrittenBy:
    """Who can write an output field's text: a fixed `author`, or the sibling `field` whose value names it."""

    author: Author | None = None
    field: str | None = None

    @classmethod
    def parse(cls, declared: str) -> WrittenBy:
        """"customer", "agent", "system", or "@<field>"; anything else is refused when the tool is declared."""
        if declared.startswith("@") and declared[1:].isidentifier():
            return cls(field=declared[1:])
        for author in AUTHORS:
            if declared == author:
                return cls(author=author)
        raise ConfigError(f"written_by must be one of {', '.join(AUTHORS)} or @<field>, not {declared!r}")

    def of(self, record: Mapping[str, object]) -> Author:
        """The author of this field in `record` (the dict that holds it). A sibling that names no known
        author reads as the customer: text of unknown origin is treated as the least trusted."""
        if self.author is not None:
            return self.author
        named = record.get(self.field or "")
        return next((a for a in AUTHORS if a == named), "customer")


class PiiMap(dict[str, PiiClass]):
    """`ToolSpec.pii_classes()`: dotted output field path -> declared class; `authors`: path -> who writes it."""

    def __init__(self, classes: Iterable[tuple[str, PiiClass]] | Mapping[str, PiiClass] = (),
                 authors: Mapping[str, WrittenBy] | None = None) -> None:
        super().__init__(classes)
        self.authors: dict[str, WrittenBy] = dict(authors or {})
