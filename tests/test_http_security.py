"""server/http_security.py: exact Host and Origin matching, trusted proxies, and start-up validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deskgate.server.http_security import Proxies, Reception
from deskgate.server.settings import ServerSection


def reception(**settings: object) -> Reception:
    server = ServerSection.model_validate(settings)
    return Reception.build(public_url=server.served_url("0.0.0.0", 8750), bind_host="0.0.0.0", port=8750,  # noqa: S104
                           allowed_hosts=server.allowed_hosts, allowed_origins=server.allowed_origins,
                           trusted_proxies=server.trusted_proxies)


def test_a_wildcard_port_entry_admits_any_port_and_nothing_that_merely_starts_like_it() -> None:
    """Issue 14 finding 10: `localhost:*` / `http://localhost:*` are not string prefixes."""
    r = reception(allowed_hosts=["desk.example:*"], allowed_origins=["http://localhost:*", "https://app.example"])
    for host in ("localhost:8791", "localhost", "127.0.0.1:1", "[::1]:8750", "desk.example", "desk.example:9"):
        assert r.host_allowed(host), host
    for host in ("localhost:8791.evil.example", "localhost.evil.example:8791", "desk.example:9.evil.example",
                 "desk.example.evil.example", "evil.desk.example", "desk.example:9@evil.example",
                 "desk.example:99999", "desk.example:*", "", None, "desk.example:9/x", "0.0.0.0:8750",
                 "[::1", "[::g]:1"):
        assert not r.host_allowed(host), host
    for origin in ("http://localhost:8791", "http://localhost", "https://app.example", "https://APP.example:443"):
        assert r.cross_origin_allowed(origin), origin
    for origin in ("http://localhost:8791.evil.example", "https://localhost:8791", "http://localhost.evil.example",
                   "https://app.example.evil.example", "https://app.example:8443", "http://app.example",
                   "https://app.example/", "https://user@app.example", "null", "app.example"):
        assert not r.cross_origin_allowed(origin), origin


def test_the_public_url_host_passes_with_or_without_its_default_port_and_the_request_origin_is_its_own() -> None:
    r = reception(public_url="https://desk.example")
    assert r.host_allowed("desk.example") and r.host_allowed("desk.example:443")
    assert not r.host_allowed("desk.example:8750")
    assert r.origin_allowed("https://desk.example", "https", "desk.example")
    assert not r.origin_allowed("https://desk.example", "http", "desk.example")  # scheme is part of the origin
    assert not r.origin_allowed("https://other.example", "https", "desk.example")


def test_only_listed_peers_are_trusted_proxies() -> None:
    proxies = Proxies(["10.0.0.0/8", "127.0.0.1"])
    assert proxies.trusts("10.1.2.3") and proxies.trusts("127.0.0.1")
    assert not proxies.trusts("127.0.0.2") and not proxies.trusts("192.0.2.1") and not proxies.trusts(None)
    assert not proxies.trusts("not-an-address") and not Proxies([]).trusts("127.0.0.1")


@pytest.mark.parametrize("settings", [
    {"allowed_hosts": ["*.example"]}, {"allowed_hosts": ["desk.example:80x"]}, {"allowed_hosts": ["a b"]},
    {"allowed_origins": ["app.example"]}, {"allowed_origins": ["https://app.example/path"]},
    {"allowed_origins": ["ftp://app.example"]}, {"allowed_origins": ["https://*.example"]},
    {"trusted_proxies": ["proxy.example"]}, {"public_url": "https://desk.example/mcp"},
    {"public_url": "desk.example"},
])
def test_a_bad_entry_stops_the_server_at_start_up(settings: dict[str, object]) -> None:
    """Configuration fails when it is loaded, naming the entry, never per request."""
    with pytest.raises(ValidationError):
        ServerSection.model_validate(settings)


def test_the_served_url_is_never_the_wildcard_address() -> None:
    assert ServerSection().served_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # noqa: S104
    assert ServerSection().served_url("::", 9000) == "http://127.0.0.1:9000"
    assert ServerSection().served_url("fd00::2", 9000) == "http://[fd00::2]:9000"
    assert ServerSection(public_url="https://desk.example/").served_url("0.0.0.0", 9000) == "https://desk.example"  # noqa: S104
