"""Generate the HELD-OUT redaction corpus: `python -m bench.corpus.make_heldout` writes heldout_corpus.jsonl.

Written apart from `make_corpus.py` (which the detectors were tuned on) and never used to tune them:
other support-text templates and phrasings, other value sources (other countries' phone plans and
IBAN formats, other card groupings, other mail domains and secret kinds), other hard negatives
(four-part version strings, SSN-shaped order numbers, IBAN-shaped placeholders failing mod-97,
tracking numbers, SKUs and EANs, ISBNs, Amazon-style order ids) and the evasion classes a security
review used (separators other than space/dot/dash, glued labels, invisible characters that are not
format characters, mixed-case IBANs with `_` or `/`, emails spelled with spaces, percent-encoded or
HTML-escaped, a homoglyph in the domain, lower-cased provider keys, `Token` authorization headers).

Same record shape as the tuning corpus ({"id", "subset", "lang", "text", "spans"}), same labels, so
`score.py` scores both. Deterministic: one seeded RNG; `tests/redaction/test_corpus.py` checks the
committed file is what this produces.
"""

from __future__ import annotations

import html
import random
import string
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from bench.corpus.make_corpus import render  # the same line format as the tuning corpus

SEED = 7_500_113
OUT = Path(__file__).with_name("heldout_corpus.jsonl")
R = random.Random
Value = tuple[str, str]  # (label, written value)


def digits(rng: R, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def nz(rng: R) -> str:
    return rng.choice("123456789")


def luhn(body: str) -> str:
    """`body` completed with its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return body + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn(number[:-1]) == number


def chunk(text: str, sizes: tuple[int, ...]) -> list[str]:
    out, pos = [], 0
    for size in sizes:
        if pos < len(text):
            out.append(text[pos : pos + size])
            pos += size
    if pos < len(text):
        out.append(text[pos:])
    return out


# --- values ------------------------------------------------------------------------------------

GIVEN = ("aoife", "bjorn", "chiara", "dmitri", "eleni", "farah", "goran", "hana", "ivo", "jasmin", "kofi", "leila",
         "mikael", "nadia", "oskar", "paula", "quentin", "rania", "stefan", "tereza", "ugo", "vera", "wiktor", "zeynep")
FAMILY = ("oconnor", "lindqvist", "esposito", "petrov", "papadopoulou", "haddad", "horvat", "novotna", "kovac",
          "mensah", "rahimi", "virtanen", "nowak", "ferreira", "lefevre", "yilmaz", "andersen", "moreau")
MAIL_DOMAINS = ("bluewin.ch", "gmx.at", "wp.pl", "telia.se", "sapo.pt", "otenet.gr", "seznam.cz", "freenet.de",
                "skynet.be", "eircom.net", "xtra.co.nz", "bigpond.com.au", "uol.com.br", "mail.ru", "naver.com",
                "kolumbus.fi", "online.no", "tiscali.it", "orange.es", "ziggo.nl", "support.acme-bikes.io",
                "dept.uni-graz.ac.at", "studio.photography", "clinic.health")


def email(rng: R) -> str:
    g, f = rng.choice(GIVEN), rng.choice(FAMILY)
    local = rng.choice((f"{g}.{f}", f"{g}{f[:3]}{rng.randint(1, 9)}", f"{f}.{g[0]}", f"{g}_{rng.randint(1990, 2009)}",
                        f"{g}.{f}+orders", f"{g[0].upper()}{f.capitalize()}", f"{g}-{f}-{rng.randint(10, 99)}"))
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def phone(rng: R) -> str:
    """International (+) and national (trunk 0 / 00 prefix) numbers of other countries' plans."""
    d = lambda n: digits(rng, n)  # noqa: E731 - a short local alias keeps the table readable
    return rng.choice((
        f"+61 2 {d(4)} {d(4)}", f"(02) {d(4)} {d(4)}", f"04{d(2)} {d(3)} {d(3)}",
        f"+64 21 {d(3)} {d(4)}", f"021 {d(3)} {d(4)}",
        f"+353 87 {d(3)} {d(4)}", f"087 {d(3)} {d(4)}",
        f"+351 91{d(1)} {d(3)} {d(3)}", f"+48 5{d(2)} {d(3)} {d(3)}",
        f"+46 70 {d(3)} {d(2)} {d(2)}", f"070-{d(3)} {d(2)} {d(2)}",
        f"+41 44 {d(3)} {d(2)} {d(2)}", f"044 {d(3)} {d(2)} {d(2)}",
        f"+43 664 {d(7)}", f"0664 {d(7)}", f"+32 47{d(1)} {d(2)} {d(2)} {d(2)}", f"047{d(1)} {d(2)} {d(2)} {d(2)}",
        f"+45 {d(2)} {d(2)} {d(2)} {d(2)}", f"+358 40 {d(7)}", f"040 {d(3)} {d(4)}",
        f"+47 4{d(2)} {d(2)} {d(3)}", f"03-{d(4)}-{d(4)}", f"+52 55 {d(4)} {d(4)}",
        f"+91 9{d(4)} {d(5)}", f"+27 82 {d(3)} {d(4)}", f"082 {d(3)} {d(4)}", f"+65 9{d(3)} {d(4)}",
        f"0044 20 {nz(rng)}{d(3)} {d(4)}", f"0033 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"00491{d(2)}{d(8)}",
        f"07700 {d(6)}", f"0171 {d(7)}", f"+49 (0)171 {d(7)}", f"089 {d(8)}",
        f"06 {d(2)} {d(2)} {d(2)} {d(2)}", f"+33 7 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+39 06 {d(4)} {d(4)}", f"+34 91{d(1)} {d(2)} {d(2)} {d(2)}", f"+31 20 {d(3)} {d(4)}", f"020-{d(3)} {d(4)}",
        f"({nz(rng)}{d(2)}) {nz(rng)}{d(2)}-{d(4)}", f"{nz(rng)}{d(2)} {nz(rng)}{d(2)} {d(4)}",
    ))


CARD_KINDS = (("4", 16, (4, 4, 4, 4)), ("5", 16, (4, 4, 4, 4)), ("2", 16, (4, 4, 4, 4)), ("37", 15, (4, 6, 5)),
              ("36", 14, (4, 6, 4)), ("6011", 16, (4, 4, 4, 4)), ("35", 16, (4, 4, 4, 4)), ("62", 19, (6, 13)),
              ("4", 19, (4, 4, 4, 4, 3)))


def card_digits(rng: R) -> str:
    prefix, length, _ = rng.choice(CARD_KINDS)
    if prefix == "5":
        prefix = f"5{rng.randint(1, 5)}"
    elif prefix == "2":
        prefix = str(rng.randint(2221, 2720))
    return luhn(prefix + digits(rng, length - len(prefix) - 1))


def card(rng: R) -> str:
    number = card_digits(rng)
    sizes = next(k[2] for k in CARD_KINDS if len(number) == k[1] and number.startswith(k[0][:1]))
    return rng.choice(("", " ", "-", " ", "  ")).join(chunk(number, sizes))


# Other countries than the tuning corpus's: (country, BBAN pattern) with n digit, a letter, c either.
IBAN_SPECS = (("BE", "n12"), ("LU", "n3c13"), ("FI", "n14"), ("PT", "n21"), ("GR", "n7c16"), ("HR", "n17"),
              ("SI", "n15"), ("LT", "n16"), ("LV", "a4c13"), ("EE", "n16"), ("CZ", "n20"), ("SK", "n20"),
              ("HU", "n24"), ("RO", "a4c16"), ("BG", "a4n6c8"), ("IS", "n22"), ("MT", "a4n5c18"), ("CY", "n8c16"),
              ("SA", "n2c18"), ("AE", "n19"), ("TR", "n5c17"), ("LI", "n5c12"), ("MC", "n10c11n2"), ("SM", "a1n10c12"))


def _bban(rng: R, spec: str) -> str:
    out, i = [], 0
    while i < len(spec):
        kind = spec[i]
        j = i + 1
        while j < len(spec) and spec[j].isdigit():
            j += 1
        pool = {"n": string.digits, "a": string.ascii_uppercase}.get(kind, string.digits + string.ascii_uppercase)
        out.append("".join(rng.choice(pool) for _ in range(int(spec[i + 1 : j]))))
        i = j
    return "".join(out)


def mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def iban_value(rng: R) -> str:
    country, spec = rng.choice(IBAN_SPECS)
    bban = _bban(rng, spec)
    return f"{country}{98 - mod97(bban + country + '00'):02d}{bban}"


def iban(rng: R) -> str:
    value = iban_value(rng)
    grouped = " ".join(chunk(value, (4,) * 9))
    return rng.choice((value, grouped, grouped, value[:4] + " " + value[4:]))


def ssn_digits(rng: R) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def ssn(rng: R) -> str:
    d = ssn_digits(rng)
    return rng.choice((f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}", d, d))


def nino(rng: R) -> str:
    while True:
        prefix = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if prefix not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = digits(rng, 6)
    return rng.choice((f"{prefix}{d}{rng.choice('ABCD')}", f"{prefix}-{d[:2]}-{d[2:4]}-{d[4:]}-{rng.choice('ABCD')}",
                       f"{prefix.lower()}{d}{rng.choice('abcd')}"))


def ip(rng: R) -> str:
    if rng.random() < 0.6:
        return ".".join(str(x) for x in (rng.choice((31, 62, 77, 89, 109, 176, 212, 91, 5, 37)),
                                         rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)))
    groups = [f"{rng.randint(1, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(("2a00", "2a01", "2600", "2804", "2c0f"))
    cut = rng.randint(1, 4)
    return rng.choice((":".join(groups), ":".join(groups[:cut]) + "::" + groups[-1]))


def _alnum(rng: R, n: int, pool: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


TOKEN = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits


def secret(rng: R) -> tuple[str, str]:
    """(frame with {} for the value, the value)."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(("CI uses {}", "gitlab token {}")), "glpat-" + _alnum(rng, 20, TOKEN + "-_")
    if kind == 1:
        return rng.choice(("NPM_TOKEN={}", "//registry.npmjs.org/:_authToken={}")), "npm_" + _alnum(rng, 36)
    if kind == 2:
        return "SENDGRID_API_KEY={}", f"SG.{_alnum(rng, 22)}.{_alnum(rng, 43)}"
    if kind == 3:
        return "webhook: https://{}", (
            f"hooks.slack.com/services/T{_alnum(rng, 8, UPPER)}/B{_alnum(rng, 8, UPPER)}/{_alnum(rng, 24)}")
    if kind == 4:
        return rng.choice(("signing secret {}", "whsec is {}")), "whsec_" + _alnum(rng, 32)
    if kind == 5:
        return rng.choice(("aws key {} (rotated?)", "AccessKeyId: {}")), "ASIA" + _alnum(rng, 16, UPPER)
    if kind == 6:
        pw = _alnum(rng, rng.randint(9, 14), string.ascii_letters + string.digits + "$%&@!")
        return rng.choice(("login pass: {}", "passcode={}", "Kennwort: {}", "my new password is {}")), pw
    if kind == 7:
        return rng.choice(("refresh_token={}", "access_token: {}")), _alnum(rng, 40)
    return rng.choice(("-H 'Authorization: Bearer {}'", "bearer {}")), _alnum(rng, 36, TOKEN + "-_.")


# --- texts -------------------------------------------------------------------------------------

NOUN = {
    "email": ("contact email", "mail address", "login e-mail", "E-Mail-Adresse", "adresse électronique", "correo"),
    "phone": ("callback number", "mobile", "cell", "contact number", "Handynummer", "numéro de portable", "teléfono",
              "telefoonnummer", "cellulare"),
    "card": ("card", "credit card number", "Visa", "Mastercard", "Kreditkartennummer", "carte", "tarjeta"),
    "iban": ("IBAN", "bank account (IBAN)", "IBAN for the refund", "Bankverbindung IBAN", "IBAN pour le virement"),
    "ssn": ("SSN", "social security number", "Social Security no", "tax id (SSN)"),
    "nino": ("National Insurance number", "NI no"),
    "ip": ("IP", "IP address", "public IP", "source IP"),
}
FRAMES = (
    ("en", "Hi team, {noun} is {v} if you need it."),
    ("en", "Could you double-check the {noun}? It should read {v}."),
    ("en", "Updated {noun} -> {v} (the old one is gone)"),
    ("en", "FYI {noun}: {v}\nThanks, and sorry for the hassle."),
    ("en", "{noun} {v}. Please confirm once done."),
    ("en", "For verification, my {noun} is {v}; let me know."),
    ("de", "Hallo, meine {noun} lautet {v}. Gruss"),
    ("de", "Bitte {noun} {v} verwenden, danke!"),
    ("fr", "Bonjour, voici la {noun} : {v}. Cordialement"),
    ("fr", "J'ai changé de {noun} ({v}), merci de corriger."),
    ("es", "Buenas, el {noun} correcto es {v}, gracias."),
    ("nl", "Graag {noun} {v} gebruiken voor contact."),
    ("it", "Salve, il {noun} aggiornato è {v}."),
    ("pt", "Olá, o {noun} é {v}, obrigado."),
    ("pl", "Dzień dobry, {noun}: {v}. Pozdrawiam"),
    ("sv", "Hej! {noun}: {v} /mvh"),
)
PHONE_FRAMES = (  # national numbers are written where context says phone
    ("en", "Please call me back on {v} after 5pm."), ("en", "You can reach me at {v}."),
    ("en", "text me at {v} when the courier is close"), ("en", "ring {v} and ask for the office"),
    ("de", "Rufen Sie mich bitte unter {v} zurück."), ("fr", "Appelez-moi au {v} svp."),
    ("es", "Llámame al {v}, por favor."), ("nl", "Bel me op {v}."), ("it", "Chiamatemi al {v}."),
    ("en", "WhatsApp: {v}"), ("en", "Contact: {v}"), ("en", "mobile {v}"),
)
SSN_FRAMES = (("en", "My SSN is {v} for the tax form."), ("en", "social security number {v}"),
              ("en", "SSN: {v}"), ("en", "tax id (SSN) {v}, please update the W-9"), ("en", "Soc. Sec. # {v}"))
FILLER = (
    "The parcel arrived with a cracked screen.", "I have been waiting three weeks now.",
    "Your chatbot kept sending me in circles.", "Appreciate the quick help earlier today!",
    "Can someone from billing look at this?", "Es ist schon das zweite Mal.", "Merci d'avance pour votre retour.",
    "La app se cierra al abrir el carrito.", "Ik wacht nog steeds op mijn terugbetaling.", "Grazie per la pazienza.",
    "The invoice shows the wrong company name.", "Please cancel the second subscription.",
)


def with_value(rng: R, label: str, value: str) -> tuple[str, str, list[tuple[str, int, int]]]:
    """(lang, text, spans) for one value in a frame fitting its label, with filler around."""
    if label == "phone" and rng.random() < 0.6:
        lang, frame = rng.choice(PHONE_FRAMES)
    elif label == "ssn" and (value.isdigit() or rng.random() < 0.5):
        lang, frame = rng.choice(SSN_FRAMES)
    else:
        lang, frame = rng.choice(FRAMES)
    frame = frame.replace("{noun}", rng.choice(NOUN[label]))
    before, after = frame.split("{v}")
    if rng.random() < 0.5:
        before = rng.choice(FILLER) + " " + before
    if rng.random() < 0.4:
        after = after + " " + rng.choice(FILLER)
    return lang, before + value + after, [(label, len(before), len(before) + len(value))]


# --- evasions ------------------------------------------------------------------------------------

SEPARATORS = ("\t", "|", ":", ";", "*", "~", " | ", " - ", "..", " / ", "\n", " \n", "_", " ; ", "**")
INVISIBLE = ("\ufe0f", "\ufe00", "\u0301", "\u0308", "\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u034f",
             "\u200b", "\u200d", "\u2060", "\U000e0020", "\u180e")
GLUE = {"card": ("card", "no.", "cc#", "Visa:", "CARD-"), "phone": ("tel", "tel.", "ph:", "mob#", "Tel:"),
        "iban": ("IBAN:", "iban#", "acct/", "IBAN"), "ssn": ("ssn", "SSN#", "ssn:"), "nino": ("NI:", "nino#")}
HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440", "i": "\u0456"}


def resep(rng: R, value: str) -> str:
    """The value's digit groups rejoined by another separator (one per value, as people type)."""
    groups, current = [], ""
    for ch in value:
        if ch.isalnum():
            current += ch
        elif current:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    prefix = "+" if value.startswith("+") else ""
    if len(groups) == 1:
        groups = chunk(groups[0], (4,) * 8) if len(groups[0]) > 10 else chunk(groups[0], (3, 3, 4))
    return prefix + rng.choice(SEPARATORS).join(groups)


def sprinkle(rng: R, value: str, count: int) -> str:
    chars = list(value)
    for _ in range(count):
        at = rng.randint(1, len(chars) - 1)
        chars.insert(at, rng.choice(INVISIBLE))
    return "".join(chars)


def evasion(rng: R) -> tuple[str, str, str]:
    """(label, written value, frame) for one of the evasion classes."""
    kind = rng.randrange(12)
    if kind in (0, 1):  # other separators
        label = rng.choice(("card", "card", "iban", "phone", "ssn"))
        value = {"card": lambda: card_digits(rng), "iban": lambda: iban_value(rng), "phone": lambda: phone(rng),
                 "ssn": lambda: ssn_digits(rng)}[label]()
        if label == "ssn":
            value = f"{value[:3]}-{value[3:5]}-{value[5:]}"
        return label, resep(rng, value), ""
    if kind == 2:  # glued to a label
        label = rng.choice(("card", "card", "iban", "phone", "ssn"))
        value = {"card": lambda: card(rng), "iban": lambda: iban(rng), "phone": lambda: phone(rng),
                 "ssn": lambda: ssn(rng)}[label]()
        if label == "ssn" and value.isdigit():
            value = f"{value[:3]}-{value[3:5]}-{value[5:]}"
        return label, value, rng.choice(GLUE[label]) + "{v}"
    if kind in (3, 4):  # invisible characters
        label = rng.choice(("card", "iban", "phone", "email", "ssn", "ip"))
        value = {"card": card, "iban": iban, "phone": phone, "email": email, "ssn": lambda r: ssn(r).replace(" ", "-"),
                 "ip": ip}[label](rng)
        return label, sprinkle(rng, value, rng.randint(1, 3)), ""
    if kind == 5:  # IBAN in mixed case, or with _ or /
        value = iban_value(rng)
        groups = chunk(value, (4,) * 9)
        mixed = "".join(c.lower() if rng.random() < 0.5 else c for c in value)
        return "iban", rng.choice((mixed, "_".join(groups), "/".join(groups), value.lower())), ""
    if kind == 6:  # emails spelled with spaces
        local, domain = email(rng).split("@")
        name, tld = domain.rsplit(".", 1)
        return "email", rng.choice((f"{local} at {name} dot {tld}", f"{local} (at) {name} (dot) {tld}",
                                    f"{local} AT {name} DOT {tld}", f"{local} @ {domain}")), ""
    if kind == 7:  # percent-encoded or HTML entities
        value = email(rng)
        return "email", rng.choice((quote(value, safe=""), value.replace("@", "&#64;"), value.replace("@", "&commat;"),
                                    html.escape(value).replace("@", "&#x40;"), value.replace(".", "&#46;"))), \
            rng.choice(("", "mailto link: {v}", "?email={v}&src=app"))
    if kind == 8:  # homoglyph in the domain
        local, domain = email(rng).split("@")
        at = next((i for i, c in enumerate(domain) if c in HOMOGLYPHS), None)
        if at is not None:
            domain = domain[:at] + HOMOGLYPHS[domain[at]] + domain[at + 1 :]
        return "email", f"{local}@{domain}", ""
    if kind == 9:  # lower-cased provider keys
        value = rng.choice(("AKIA" + _alnum(rng, 16, string.ascii_uppercase + string.digits), "ghp_" + _alnum(rng, 36),
                            "sk_live_" + _alnum(rng, 24), "glpat-" + _alnum(rng, 20)))
        return "secret", value.lower(), rng.choice(("key {v}", "token: {v}", "{v}"))
    if kind == 10:  # Token authorization headers
        return "secret", _alnum(rng, 40, string.hexdigits.lower()), rng.choice(
            ("Authorization: Token {v}", "-H 'Authorization: token {v}'", "header was `Token {v}`"))
    value = card_digits(rng)  # a card split over two lines
    cut = rng.choice((4, 8, 12))
    return "card", value[:cut] + rng.choice(("\n", "\r\n", " \n ")) + value[cut:], ""


# --- hard negatives ------------------------------------------------------------------------------

def bad_iban(rng: R) -> str:
    while True:
        value = iban_value(rng)
        value = value[:2] + rng.choice(("00", "01", "99", value[2:4])) + value[4:-1] + rng.choice(string.digits)
        if mod97(value[4:] + value[:4]) != 1:
            return rng.choice((value, " ".join(chunk(value, (4,) * 9))))


def ean13(rng: R) -> str:
    body = rng.choice(("400", "401", "50", "87", "890", "978")) + digits(rng, 12)
    body = body[:12]
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def negative(rng: R) -> tuple[str, str]:
    """(lang, text) with look-alikes only."""
    d = lambda n: digits(rng, n)  # noqa: E731
    four_part = f"{rng.randint(1, 30)}.{rng.randint(0, 20)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    ssn_shape = f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{d(4)}"
    options: tuple[Callable[[], str], ...] = (
        lambda: f"The app shows version {four_part} in the about box.",
        lambda: f"Still broken after updating to build {four_part}.",
        lambda: f"Firmware {four_part} bricked the router.",
        lambda: f"We're on release {four_part}, is that current?",
        lambda: f"Running v{four_part} on Android 14.",
        lambda: f"Windows 11 build 10.0.{rng.randint(10000, 26000)}.{rng.randint(1, 5000)} here.",
        lambda: f"driver version {four_part} was installed by the updater",
        lambda: f"Upgraded to {four_part} and now it crashes on start.",
        lambda: f"After installing {four_part} the sync stopped.",
        lambda: f"Order {ssn_shape} never shipped.",
        lambda: f"Re: order #{ssn_shape} - wrong size",
        lambda: f"RMA {ssn_shape} was approved last week.",
        lambda: f"Case number {ssn_shape}, please escalate.",
        lambda: f"Bestellnummer {ssn_shape} ist unvollständig.",
        lambda: f"Invoice {ssn_shape} is doubled.",
        lambda: f"The form example says IBAN {bad_iban(rng)} - is that a real one?",
        lambda: f"Placeholder IBAN {bad_iban(rng)} in your docs fails validation.",
        lambda: f"UPS tracking 1Z{_alnum(rng, 6, string.ascii_uppercase + string.digits)}{d(10)}",
        lambda: f"USPS tracking number: 9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}",
        lambda: f"FedEx tracking {d(4)} {d(4)} {d(4)} shows delivered.",
        lambda: f"DHL Sendungsnummer {d(10)}",
        lambda: f"Royal Mail ref {rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}{d(9)}GB",
        lambda: f"SKU {ean13(rng)} is out of stock again.",
        lambda: f"EAN {ean13(rng)} scans as a different product.",
        lambda: f"Amazon order {d(3)}-{d(7)}-{d(7)} was split.",
        lambda: f"ISBN 978-{rng.randint(0, 9)}-{d(3)}-{d(5)}-{rng.randint(0, 9)} is the edition I meant.",
        lambda: f"Serial no. {rng.choice(('SN', 'S/N'))} {d(4)}-{d(4)}-{d(4)}",
        lambda: f"Paid EUR {rng.randint(10, 9999)},{d(2)} on {rng.randint(1, 28)}.{rng.randint(1, 12)}.2026 "
                f"at {rng.randint(0, 23)}:{d(2)}",
        lambda: f"Your total of ${rng.randint(1, 99)},{d(3)}.{d(2)} is wrong.",
        lambda: f"Postcode {d(5)}, {rng.randint(1, 300)} units, {rng.randint(1, 99)}% off.",
        lambda: f"Item {d(3)}.{d(3)}.{d(2)} (IKEA article number) was missing.",
        lambda: f"Booking ref {d(3)} {d(3)} {d(3)} for the 12:40 flight.",
        lambda: f"Reference {d(9)} on the bank statement.",
        lambda: f"Meeting ID {d(3)} {d(4)} {d(4)}",
        lambda: f"IMEI {luhn('35' + d(12))} per the box label.",
        lambda: f"Order {rng.choice(('O', 'ORD', 'SO'))}-{d(8)} and parcel {d(14)}.",
        lambda: f"Section {'.'.join(str(rng.randint(1, 9)) for _ in range(4))} of the terms applies.",
    )
    return "en", rng.choice(options)()


CLEAN = (
    "Hello, the refund still has not arrived. Could you check what happened?",
    "I'd like to switch to the annual plan and keep my current seats.",
    "The delivery driver left the box at the wrong door, again.",
    "Guten Tag, die Rechnung vom März fehlt in meinem Kundenkonto.",
    "Bonjour, je n'arrive pas à me connecter depuis la mise à jour.",
    "Hola, me cobraron dos veces este mes, ¿pueden revisarlo?",
    "Goedemiddag, het pakket is beschadigd aangekomen.",
    "Buongiorno, vorrei annullare l'abbonamento dal mese prossimo.",
    "Thanks for sorting that out so quickly, much appreciated.",
    "Can I change the delivery slot to Thursday morning?",
    "The discount code from your newsletter is not accepted at checkout.",
    "We spoke on the phone yesterday; you said someone would email me.",
    "My account was locked after three login attempts, please help.",
    "Is there a way to export all my invoices at once?",
    "The size chart says M but the shirt fits like an XS.",
    "Olá, o pedido chegou incompleto, faltam duas peças.",
    "Dzień dobry, proszę o fakturę na firmę.",
    "Hej, jag vill byta leveransadress för nästa beställning.",
)


# --- assembly ----------------------------------------------------------------------------------

PLAIN_VALUES: dict[str, Callable[[R], str]] = {"email": email, "phone": phone, "card": card, "iban": iban, "ssn": ssn,
                                                "nino": nino, "ip": ip}


def generate(seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    records: list[dict[str, object]] = []

    def emit(subset: str, lang: str, text: str, spans: list[tuple[str, int, int]]) -> None:
        records.append({"id": len(records), "subset": subset, "lang": lang, "text": text,
                        "spans": [{"label": lb, "start": s, "end": e} for lb, s, e in spans]})

    labels = sorted(PLAIN_VALUES)
    for i in range(1400):  # plain: one or two values per text
        label = labels[i % len(labels)]
        lang, text, spans = with_value(rng, label, PLAIN_VALUES[label](rng))
        if rng.random() < 0.3:
            other = rng.choice(labels)
            _, more, more_spans = with_value(rng, other, PLAIN_VALUES[other](rng))
            shift = len(text) + 1
            text = f"{text} {more}"
            spans += [(lb, s + shift, e + shift) for lb, s, e in more_spans]
        emit("plain", lang, text, spans)
    for _ in range(200):  # secrets
        frame, value = secret(rng)
        before, after = frame.split("{}")
        filler = rng.choice(FILLER) + " "
        emit("plain", "en", filler + before + value + after,
             [("secret", len(filler) + len(before), len(filler) + len(before) + len(value))])
    for _ in range(600):  # evasions
        label, value, glue = evasion(rng)
        if label == "secret":
            lang, text, spans = "en", value, [("secret", 0, len(value))]
        else:
            lang, text, spans = with_value(rng, label, value)
        if glue:
            _, start, end = spans[0]
            before, after = glue.split("{v}")
            text = text[:start] + before + value + after + text[end:]
            spans = [(label, start + len(before), end + len(before))]
        emit("evasion", lang, text, spans)
    for _ in range(700):  # hard negatives
        lang, text = negative(rng)
        emit("negative", lang, text, [])
    for _ in range(300):  # clean support texts
        text = " ".join(rng.sample(CLEAN, rng.randint(1, 3)))
        emit("prose", "en", text, [])
    return records


if __name__ == "__main__":
    OUT.write_text(render(generate()), encoding="utf-8", newline="\n")
    print(f"wrote {OUT}")
