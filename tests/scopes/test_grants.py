"""What a platform client is granted (`scopes/grants.py`): scope within its role, RFC 9396 session
bindings within its limits, and RFC 8707 resource. Pure functions, called directly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deskgate.scopes.clients import Client
from deskgate.scopes.grants import SESSION_TYPE, SessionGrant, grant
from deskgate.scopes.roles import load_roles
from deskgate.server.errors import TokenRequestRefused

MCP_URL = "https://deskgate.example/mcp"
TIER1 = load_roles().scopes_of("tier1-agent")


def client(*, max_refund: str | None = None, allow_unbound: bool = False) -> Client:
    return Client("dgc_" + "A" * 24, "platform-a", "tier1-agent", "client_secret", 600, max_refund, allow_unbound,
                  0, None)


def details(**fields: Any) -> str:
    return json.dumps([{"type": SESSION_TYPE, **fields}])


def granted(who: Client | None = None, *, scope: str | None = None, authorization_details: str | None = None,
            resource: list[str] | None = None) -> SessionGrant:
    return grant(who or client(), TIER1, scope=scope, authorization_details=authorization_details,
                 resource=resource or [], mcp_url=MCP_URL)


def refused(error: str, code: str, **request: Any) -> None:
    with pytest.raises(TokenRequestRefused) as caught:
        granted(**request)
    assert (caught.value.error, caught.value.code) == (error, code)


def test_without_scope_a_session_gets_every_scope_of_the_role() -> None:
    """RFC 6749 §3.3: the server's default when `scope` is omitted is the client's whole role."""
    assert granted(authorization_details=details(customer_id="C-1")).scopes == TIER1


def test_a_session_may_narrow_its_scopes_but_never_widen_them() -> None:
    """A subset of the role is granted as asked; one scope beyond the role refuses the request."""
    bound = details(customer_id="C-1")
    assert granted(scope="orders:read notes:write", authorization_details=bound).scopes == {"orders:read",
                                                                                              "notes:write"}
    refused("invalid_scope", "scope_beyond_role", scope="orders:read refunds:write", authorization_details=bound)
    refused("invalid_scope", "scope_beyond_role", scope="admin", authorization_details=bound)
    refused("invalid_scope", "malformed_scope", scope="orders:read  notes:write", authorization_details=bound)
    refused("invalid_scope", "malformed_scope", scope='orders:read "x"', authorization_details=bound)


def test_a_deskgate_session_binds_customer_ticket_and_payout_cap_and_is_repeated_in_the_grant() -> None:
    """The granted details are what the token carries (RFC 9396 §7)."""
    session = granted(authorization_details=details(customer_id="C-1042", ticket_id="T-880", max_refund="49.5"))
    assert (session.customer, session.ticket, session.max_refund) == ("C-1042", "T-880", "49.5")
    assert session.authorization_details() == [{"type": SESSION_TYPE, "customer_id": "C-1042", "ticket_id": "T-880",
                                                "max_refund": "49.5"}]
    assert granted(authorization_details=details(ticket_id="T-1", max_refund=20)).max_refund == "20"


@pytest.mark.parametrize(("raw", "code"), [
    (json.dumps([{"type": "payment_initiation", "customer_id": "C-1"}]), "unknown_type"),
    (json.dumps([{"customer_id": "C-1"}]), "unknown_type"),
    (details(customer_id="C-1", locations=["https://x.example"]), "unknown_field"),
    (details(customer_id="C-1", sub="someone-else"), "unknown_field"),
    (json.dumps([{"type": SESSION_TYPE, "customer_id": "C-1"}] * 2), "malformed_details"),
    (json.dumps([]), "malformed_details"),
    (json.dumps({"type": SESSION_TYPE, "customer_id": "C-1"}), "malformed_details"),
    ('[{"type": "deskgate_session", "customer_id": "C-1", "customer_id": "C-2"}]', "malformed_details"),
    ("[{", "malformed_details"),
    ('[{"type": "deskgate_session", "customer_id": "C-1", "max_refund": NaN}]', "malformed_details"),
    (details(customer_id="C-1 OR 1=1"), "bad_binding"),
    (details(customer_id=1042), "bad_binding"),
    (details(ticket_id=""), "bad_binding"),
    (details(customer_id="C-1", max_refund=49.99), "bad_amount"),
    (details(customer_id="C-1", max_refund=True), "bad_amount"),
    (details(customer_id="C-1", max_refund="-1"), "bad_amount"),
    (details(customer_id="C-1", max_refund="1.001"), "bad_amount"),
    (details(customer_id="C-1", max_refund="Infinity"), "bad_amount"),
])
def test_unknown_types_fields_and_malformed_bindings_are_refused(raw: str, code: str) -> None:
    """RFC 9396 §5: anything not exactly a well-formed deskgate_session is invalid_authorization_details."""
    refused("invalid_authorization_details", code, authorization_details=raw)


def test_the_client_ceiling_caps_every_session_and_cannot_be_exceeded() -> None:
    """A ceiling is the cap of a session that asks for none; a session may ask for less, never for more."""
    capped = client(max_refund="50")
    assert granted(capped, authorization_details=details(customer_id="C-1")).max_refund == "50"
    assert granted(capped, authorization_details=details(customer_id="C-1", max_refund="10")).max_refund == "10"
    with pytest.raises(TokenRequestRefused) as caught:
        granted(capped, authorization_details=details(customer_id="C-1", max_refund="50.01"))
    assert (caught.value.error, caught.value.code) == ("invalid_authorization_details", "refund_above_ceiling")


def test_an_unbound_session_needs_a_client_registered_to_allow_it() -> None:
    """By default every session is bound to a customer or a ticket: a platform client is no master key."""
    refused("invalid_authorization_details", "unbound_session")
    refused("invalid_authorization_details", "unbound_session", authorization_details=details(max_refund="5"))
    free = granted(client(allow_unbound=True))
    assert free.customer is None and free.ticket is None and free.authorization_details() == []


def test_the_only_resource_is_this_servers_mcp_endpoint() -> None:
    """RFC 8707: our MCP URL (or none) is accepted; any other, or more than one, is invalid_target."""
    bound = details(customer_id="C-1")
    assert granted(resource=[MCP_URL], authorization_details=bound).customer == "C-1"
    for resource in (["https://evil.example/mcp"], [MCP_URL + "/"], [MCP_URL, MCP_URL], ["urn:x"]):
        refused("invalid_target", "wrong_resource", resource=resource, authorization_details=bound)
