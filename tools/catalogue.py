"""The curated tool catalogue: every tool deskgate serves, registered in one fixed order.

The order is what `tools/list` shows and what the manifest hashes: read-only tools first, then
writes from the least to the most consequential. Registration validates each spec (scope, risk
metadata, PII class of every output text field) and fails start-up on the first gap.
"""

from __future__ import annotations

from deskgate.tools.read import READ_TOOLS
from deskgate.tools.spec import Catalogue
from deskgate.tools.write import WRITE_TOOLS


def build_catalogue() -> Catalogue:
    """A fresh, unfrozen catalogue of all tools (the server freezes it once it starts)."""
    catalogue = Catalogue()
    for spec in (*READ_TOOLS, *WRITE_TOOLS):
        catalogue.register(spec)
    return catalogue
