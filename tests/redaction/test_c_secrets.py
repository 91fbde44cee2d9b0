"""The compiled twin `_c_secrets` returns exactly what `detectors._secrets` yields, for every text.

What every twin must do alike (corpus, mutations, arbitrary, long repeated, short and four-byte
texts, bad arguments) is in `test_native.py`; here, what is particular to secrets.
"""

# ruff: noqa: RUF001 - look-alike and other non-ASCII characters are the inputs under test

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import detectors
from tests.redaction.twins import compiled, same, views

NAME = "secrets"


def _verbatim(module, text: str, low: str | None = None) -> list:
    """`same`, and each hit a secret whose value is the very text it spans (of the text scanned)."""
    hits = same(module, NAME, text, low)
    scanned = views(text)[0] if low is None else text
    for cls, kind, start, end, value in hits:
        assert cls is detectors.PiiClass.SECRET, kind
        assert value == scanned[start:end], kind
    return hits


# --- every secret kind, as the reference's table has it -----------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nq3Zb0=\n-----END RSA PRIVATE KEY-----"
SECRETS = {
    "private_key": PEM,
    "jwt": JWT,
    "bearer_token": "Bearer mF_9.B5f-4.1JqM+/~==",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a1B2c3D4" * 4 + "e5F6",
    "gitlab_token": "glpat-" + "x1_-" * 6,
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google_api_key": "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "openai_anthropic_key": "sk-ant-api03-" + "xY9_" * 23 + "AA",
    "sendgrid_key": "SG." + "a" * 22 + "." + "b" * 43,
    "npm_token": "npm_" + "A1b2" * 9,
}
MORE_SECRETS = [
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",  # cut before its END line
    "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\nmore",  # END of another kind
    "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3Blbn\r\n-----END OPENSSH PRIVATE KEY-----",
    "github_pat_11ABCDEFG0123456789abcd_" + "x" * 59,
    "ghs_" + "Z" * 251 + "tail",  # longer than the pattern reads
    "rk_test_" + "51H8abcdefGHIJKL0123mnop",
    "whsec_" + "q" * 16,
    "hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "bearer " + "t" * 12,
    "BEARER\t\t" + "t" * 12 + "==",
    "bEARER " + JWT,  # a bearer token that is also a JWT: both, table order
    "sk-proj-" + "Ab3" * 16,
    "ASIA" + "Q" * 16,
]
LOOK_ALIKES = [
    "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",  # not private
    "AKIA" + "Q" * 17,  # one character too many
    "ghp_" + "a" * 35,  # one too few
    "bearer token",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.notajwt",
    "SG." + "a" * 15 + "." + "b" * 16,
    "xoxq-" + "1" * 20,
]
KINDS = [kind for kind, _, _, _ in detectors._SECRETS]


def test_the_table_is_the_one_these_tests_cover():
    """A kind added to the reference's table gets an example here."""
    assert sorted(SECRETS) == sorted(KINDS)


@pytest.mark.parametrize("secret", list(SECRETS.values()) + MORE_SECRETS + LOOK_ALIKES)
def test_every_kind_of_secret_is_found_as_the_reference_finds_it(secret):
    module = compiled(NAME)
    assert bool(same(module, NAME, f"here: {secret} (oops)")) == (secret not in LOOK_ALIKES)
    for text in (secret, f"x{secret}", f"_{secret}", f"-{secret}", f"é{secret}", f"{secret}x", secret[:-1],
                 secret[: len(secret) // 2], f"{secret} {secret}", f"{secret}{secret}", secret.lower()):
        _verbatim(module, text)


def test_secrets_glued_to_token_characters_are_skipped_as_the_reference_skips_them():
    """A match inside a longer token is no secret (a bearer token excepted); a glued literal after it is retried."""
    module = compiled(NAME)
    kinds_found = set()
    glues = ["a", "Z", "0", "_", "-", ".", "é", "\u00a0", "𝐀"]
    for secret, glue in itertools.product([*SECRETS.values(), *MORE_SECRETS, *LOOK_ALIKES], glues):
        for text in (glue + secret, secret + glue + secret, glue * 3 + secret + glue):
            kinds_found |= {hit[1] for hit in same(module, NAME, text)}
    assert kinds_found == set(KINDS)


def test_every_kind_is_found_at_the_start_the_end_and_in_every_position():
    module = compiled(NAME)
    secrets = list(SECRETS.values())
    text = "\n".join(f"{kind} = {secret}" for kind, secret in SECRETS.items())
    hits = same(module, NAME, text)
    assert {hit[1] for hit in hits} == {*KINDS, "credential"}  # "private_key = ..." is a pair too
    joined = " ".join(secrets)
    assert [hit[1] for hit in same(module, NAME, joined)][: len(KINDS)] == KINDS  # table order, not text order
    for cut in range(len(joined) + 1):
        same(module, NAME, joined[:cut], joined[:cut].lower())
        same(module, NAME, joined[cut:], joined[cut:].lower())


# --- credential pairs ---------------------------------------------------------------------------------

PAIRS = [
    "password=hunter2!", "Password: 'correct horse'", 'api_key = "abc123def"', "client-secret:xyz", "pin=1234",
    "token=***", "password: <hidden>", "password=[REDACTED]", "pwd = n/a", "secret: null", "passwort: Geheim99",
    "mot de passe : soleil42", "contraseña=clave123", "wachtwoord=geheim!", "parola d'ordine: xxx", "key=\"\"",
    "pass word=abc", "PASSWORD=abc", "token:\n\nvalue", "token=" + "a" * 300, "my_api-key='v:w'", "token=a=b=c",
    "token: a: b: c", "key=value;secret=other",
    # the key word in reach of its separator (`_PAIR_NEAR`: 24 characters, one line) or not
    "pwd " + "x" * 30 + "=v", "pwd " + "x" * 19 + ":v", "token" + " " * 25 + "=far pin=near",
    "token" + "\t" * 24 + "=v", "token\n=v pin=w",
    # spoken: the key word's start, the value's trailing punctuation stripped, its length, its symbol
    "my password is hunter2!", "mot de passe est soleil42.", "la contraseña es secreta#1", "pin is 123456",
    "wachtwoord is nu geheim12;", "xpin is hunter2!", "password is hunter", "Password Is Hunter2!",
    "my password is abc12.", "pin is 1234:;", "pwd is abc123:", "pwd is abc1234:.;,", "pin is ::::::",
    "pwd is abc123,", "pwd was 'x1,,,,.'", "2pin is 123456", "ǅpin is 123456", "²pin is 123456", "_pin is 123456",
    "é pin is 123456",
]


@pytest.mark.parametrize("text", PAIRS)
def test_credential_pairs_are_found_as_the_reference_finds_them(text):
    module = compiled(NAME)
    for variant in (text, f"x{text}", f"{text}.", f"a: {text}\n{text}", text.upper(), f"İ{text}", f"pass:{text}"):
        _verbatim(module, variant)


def test_the_key_word_of_a_pair_is_searched_no_farther_back_than_the_reference_searches():
    """Each distance from key word to separator, across `_PAIR_REACH` and the 48 characters `_PAIR_KEY` reads."""
    module = compiled(NAME)
    found = 0
    words = ["password", "token", "contraseña", "x_secret", "client-secret", "a" * 40 + "_pin"]
    for word, gap, sep in itertools.product(words, range(60), ":="):
        for filler in (" ", "a", "\n", ":"):
            found += len(same(module, NAME, f"{word}{filler * gap}{sep}value1!"))
    assert found > 100


# --- generated texts (corpus, mutations, arbitrary and long repeated text: `test_native.py`) ---------

# Fragments for the twin's corner cases: the reference tests' scan parts, secrets whole and cut,
# glued to token characters, pair keys and separators, spoken keys, and non-ASCII letters and digits.
_PARTS = st.lists(st.one_of(
    st.text(alphabet="0123456789 -.:=/()+#_\n;!?abAB\"'", max_size=8),
    st.text(max_size=6),
    st.sampled_from([
        "password", "Passwort", "pwd", "pin", "mot de passe", "mot de ", "contraseña", "wachtwoord", "token",
        "api_key", "client-secret", "kennwort", "parola d'ordine", "clave", "key", "secret",
        " is ", " ist ", " es ", " est ", " is nu ", "hunter2!", "hunter", ":", "=", "\n", "\t", '"', "'", "***",
        "n/a", "<x>", "[redacted]", "é12", "İ", "ǅ", "١٢٣", "𝐀", "\u00a0", "\u2028",
        "Bearer ", "bearer", "BEARER\t", "bEARER ", "sk_live_", "rk_test_", "whsec_", "xoxb-", "xoxox",
        "hooks.slack.com/services/", "eyJ", "eyJabcdefgh.", "AKIA", "ASIA", "ghp_", "github_pat_", "glpat-", "AIza",
        "sk-", "SG.", "npm_", "-----BEGIN ", "PRIVATE KEY-----", "-----END ", "RSA ", "-----",
        "abcdefghijklmnopqrstuvwxyz0123456789AB", "Q" * 16, "x9" * 10, "..", ". ", ",;:",
        *SECRETS.values(), *(s[:-3] for s in SECRETS.values()),
    ]),
), max_size=20)


@settings(max_examples=1500, deadline=None)
@given(_PARTS)
@example(["mot de passe", " est ", "hunter2!"])
@example(["xpin", " is ", "pin is hunter2!"])
@example(["token", "=", "a" * 20, "password", "=", "x:"])
@example(["-----BEGIN ", "RSA ", "PRIVATE KEY-----", "abc", "-----END ", "RSA ", "PRIVATE KEY-----"])
@example(["Bearer ", JWT])
def test_the_twin_agrees_with_the_reference_on_generated_texts(parts):
    module = compiled(NAME)
    text = "".join(parts)
    _verbatim(module, text)


@settings(max_examples=300, deadline=None)
@given(_PARTS, st.integers(min_value=1, max_value=60))
def test_the_twin_agrees_on_long_texts_where_the_reference_scans_pattern_by_pattern(parts, repeat):
    """Past `_LONG` characters the reference scans one pattern at a time; the twin one way at every length."""
    module = compiled(NAME)
    text = "".join(parts) * repeat + " " * detectors._LONG
    assert len(text) >= detectors._LONG
    same(module, NAME, text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=detectors._LONG // 4).flatmap(
    lambda text: st.tuples(st.just(text), st.text(min_size=len(text), max_size=len(text)))))
def test_any_two_strings_of_one_length_are_read_as_the_reference_reads_them(pair):
    """A `low` that is no lower-cased twin of the text: below `_LONG` the reference reads it as the twin does."""
    module = compiled(NAME)
    text, low = pair
    _verbatim(module, text, low)


# --- attacks and bad input ----------------------------------------------------------------------------


def test_a_str_subclass_is_read_as_a_str():
    module = compiled(NAME)

    class Text(str):
        pass

    text = Text(f"password=hunter2! {SECRETS['aws_access_key']}")
    same(module, NAME, text, Text(text.lower()))


def test_a_megabyte_text_is_scanned_whole():
    module = compiled(NAME)
    block = "".join(f" lorem ipsum {secret} dolor; password: x{i}y! " for i, secret in enumerate(SECRETS.values()))
    text = (block * (1_000_000 // len(block) + 1))[:1_000_000]
    hits = _verbatim(module, text, text.lower())
    assert len(hits) > 10_000


def test_texts_of_wide_characters_work():
    """Two- and four-byte characters around, inside and between secrets (offsets are characters)."""
    module = compiled(NAME)
    for wide in ("ā", "€", "\U0001f600", "\U0010ffff", "𝐀"):
        text = wide.join([*SECRETS.values(), "password=" + wide * 8, "my password is " + wide * 6 + "1", ""])
        _verbatim(module, text, text.lower())
        same(module, NAME, text)
        glued = "".join(wide + secret for secret in SECRETS.values()) + wide
        same(module, NAME, glued, glued.lower())


def test_pathological_repetitions_are_found_as_the_reference_finds_them():
    """Many literals, separators and key words in a row, none of them ending well."""
    module = compiled(NAME)
    for unit in ("-----BEGIN ", "-----BEGIN PRIVATE KEY-----", "eyJ", "Bearer ", "sk-" + "a" * 19, "password:",
                 "pin is ", "mot de mot de passe is ", ":=", "ghp_", "xox", "hooks.slack.com/"):
        text = unit * (20_000 // len(unit))
        same(module, NAME, text, text.lower())


def test_configure_can_be_called_again_and_refuses_a_module_without_the_rules():
    module = compiled(NAME)
    text = f"password=hunter2! {SECRETS['jwt']}"
    before = module.scan(text, text.lower())
    module.configure(detectors)
    assert module.scan(text, text.lower()) == before

    class Partial:
        pass

    partial = Partial()
    with pytest.raises(AttributeError):
        module.configure(partial)
    for name in ("PiiClass", "_SECRETS", "_LITERALS", "_SECRETS_BY_LITERAL", "_TOKEN_CHAR", "_PAIR_HINT_WORDS"):
        setattr(partial, name, getattr(detectors, name))
    with pytest.raises(AttributeError):
        module.configure(partial)  # still no _PAIR_REACH, no pair patterns
    assert module.scan(text, text.lower()) == before  # a failed configure keeps the rules it had
