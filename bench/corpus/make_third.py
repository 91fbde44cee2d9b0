"""Generate the THIRD redaction corpus: `python -m bench.corpus.make_third` writes third_corpus.jsonl.

A second held-out set, written from scratch (it shares no templates or value code with `make_corpus.py`
or `make_heldout.py`) and frozen before anything was measured on it, so that tuning on the first
held-out set does not pass for generalising. Other shapes of text: CRM exports (CSV and key=value
lines), chat transcripts, forwarded mail with quoted replies, JSON-ish logs, call-centre notes. Other
value sources: phone plans of Brazil, Japan, Australia, India, Poland, Sweden, Mexico, South Africa
and North America as their people write them; Amex 4-6-5 and Diners 4-6-4 groupings; IBANs of
Belgium, Poland, Sweden, Portugal, Ireland, Switzerland, Denmark, Finland, Norway; IPv4 with ports,
IPv6 in brackets; secrets as config lines, environment variables, curl headers, JSON fields. Evasions:
no-break and thin spaces, full-width and Arabic-Indic digits, zero-width joiners inside values, line
wraps, values glued to labels, addresses spelled out. Hard negatives: UUIDs, git hashes, amounts,
timestamps, invalid checksums, reserved SSN areas, impossible addresses, build and ticket numbers.

Same record shape and labels as the other corpora (`score.py` scores it). Deterministic: one seeded
RNG; `tests/redaction/test_corpus.py` checks the committed file is what this produces.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from bench.corpus.make_corpus import render  # the same line format as the other corpora

SEED = 31_337_2026
OUT = Path(__file__).with_name("third_corpus.jsonl")
R = random.Random
Span = tuple[str, int, int]


def num(rng: R, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def check_digit(body: str) -> str:
    """`body` with the Luhn digit that makes it valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


def grouped(value: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, pos = [], 0
    for size in sizes:
        parts.append(value[pos : pos + size])
        pos += size
    if pos < len(value):
        parts.append(value[pos:])
    return sep.join(p for p in parts if p)


# --- values ---------------------------------------------------------------------------------------

FIRST = ("ana", "kenji", "priya", "lukas", "sofia", "thabo", "olga", "mateo", "ines", "noah", "mei", "jonas")
LAST = ("silva", "tanaka", "sharma", "nowak", "lindqvist", "garcia", "dlamini", "murphy", "dubois", "rossi")
DOMAINS = ("uol.com.br", "docomo.ne.jp", "bigpond.com", "rediffmail.com", "wp.pl", "telia.se", "prodigy.net.mx",
           "mweb.co.za", "shaw.ca", "acme-corp.io", "mail.example.org", "kundenservice.de")


def email(rng: R) -> str:
    sep = rng.choice((".", "_", "-", ""))
    local = f"{rng.choice(FIRST)}{sep}{rng.choice(LAST)}" + (num(rng, 2) if rng.random() < 0.3 else "")
    return f"{local}@{rng.choice(DOMAINS)}"


def phone(rng: R) -> str:
    kind = rng.randrange(10)
    if kind == 0:  # Brazil mobile
        return rng.choice(("+55 11 9{} {}", "(11) 9{}-{}", "+55 (21) 9{}-{}")).format(num(rng, 4), num(rng, 4))
    if kind == 1:  # Japan
        return rng.choice(("+81 90-{}-{}", "090-{}-{}", "+81 3 {} {}")).format(num(rng, 4), num(rng, 4))
    if kind == 2:  # Australia
        return rng.choice(("+61 4{} {} {}", "04{} {} {}")).format(num(rng, 2), num(rng, 3), num(rng, 3))
    if kind == 3:  # India
        return rng.choice(("+91 9{} {}", "+91-9{}-{}", "09{} {}")).format(num(rng, 4), num(rng, 5))
    if kind == 4:  # Poland
        return rng.choice(("+48 5{} {} {}", "+48 6{}-{}-{}")).format(num(rng, 2), num(rng, 3), num(rng, 3))
    if kind == 5:  # Sweden
        return rng.choice(("+46 70 {} {} {}", "070-{} {} {}")).format(num(rng, 3), num(rng, 2), num(rng, 2))
    if kind == 6:  # Mexico
        return rng.choice(("+52 55 {} {}", "+52 1 55 {} {}")).format(num(rng, 4), num(rng, 4))
    if kind == 7:  # South Africa
        return rng.choice(("+27 82 {} {}", "082 {} {}")).format(num(rng, 3), num(rng, 4))
    area, exchange = f"{rng.randint(2, 9)}{num(rng, 2)}", f"{rng.randint(2, 9)}{num(rng, 2)}"
    if kind == 8:  # North America
        return rng.choice(("({}) {}-{}", "{}.{}.{}", "1-{}-{}-{}", "+1 {} {} {}")).format(area, exchange, num(rng, 4))
    return f"+{rng.choice(('44', '33', '49', '34', '39', '31'))} {num(rng, 3)} {num(rng, 3)} {num(rng, 4)}"


def card(rng: R) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # Amex 4-6-5
        return grouped(check_digit(rng.choice(("34", "37")) + num(rng, 12)), (4, 6, 5), rng.choice((" ", "-")))
    if kind == 1:  # Diners 4-6-4
        return grouped(check_digit("36" + num(rng, 11)), (4, 6, 4), " ")
    prefix = ("4", "51", "2221", "6011", "3528")[kind - 1]
    value = check_digit(prefix + num(rng, 15 - len(prefix)))
    return rng.choice((grouped(value, (4, 4, 4, 4), rng.choice((" ", "-", "  "))), value))


IBAN_SHAPES = {"BE": "12n", "PL": "24n", "SE": "20n", "PT": "21n", "IE": "4a14n", "CH": "17n", "DK": "14n",
               "FI": "14n", "NO": "11n"}


def iban(rng: R) -> str:
    shape = IBAN_SHAPES[country := rng.choice(sorted(IBAN_SHAPES))]
    bban = ""
    for count, kind in ((int(part[:-1]), part[-1]) for part in shape.replace("a", "a ").split()):
        bban += "".join(rng.choice(string.ascii_uppercase if kind == "a" else string.digits) for _ in range(count))
    as_digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    value = f"{country}{98 - int(as_digits) % 97:02d}{bban}"
    return grouped(value, (4,) * 8, " ") if rng.random() < 0.7 else value


def ssn(rng: R) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    value = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return rng.choice((f"{value[:3]}-{value[3:5]}-{value[5:]}", f"{value[:3]} {value[3:5]} {value[5:]}"))


def nino(rng: R) -> str:
    first, second = rng.choice("ABCEGHJKLMPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):  # never issued: not a NINO
        first, second = rng.choice("ABCEGHJKLMPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")
    value = f"{first}{second}{num(rng, 6)}{rng.choice('ABCD')}"
    return rng.choice((value, grouped(value, (2, 2, 2, 2, 1), " ")))


def ip(rng: R) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return rng.choice(("2a02:{}:{}::{}", "2001:db8:{}:{}::{}", "fe80::{}:{}:{}")).format(
        *(f"{rng.randint(1, 0xFFFF):x}" for _ in range(3)))


def _token(rng: R, n: int, pool: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


def secret(rng: R) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return "AKIA" + _token(rng, 16, string.ascii_uppercase + string.digits)
    if kind == 1:
        return "ghp_" + _token(rng, 36)
    if kind == 2:
        return "xoxb-" + num(rng, 11) + "-" + num(rng, 12) + "-" + _token(rng, 24)
    if kind == 3:
        return "sk_live_" + _token(rng, 24)
    if kind == 4:
        return "glpat-" + _token(rng, 20)
    if kind == 5:
        return "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI" + _token(rng, 16) + "In0." + _token(rng, 30)
    if kind == 6:
        return "AIza" + _token(rng, 35)
    return "SG." + _token(rng, 22) + "." + _token(rng, 43)


VALUES = {"email": email, "phone": phone, "card": card, "iban": iban, "ssn": ssn, "nino": nino, "ip": ip,
          "secret": secret}

# --- frames: where a value sits ------------------------------------------------------------------

FRAMES = {
    "email": ("contact_email,{v},verified", "From: {n} <{v}>", "[chat] customer: pls reply to {v} thx",
              "> On Tue, {v} wrote:", "reply_to={v}; lang=pt"),
    "phone": ("callback_number,{v},mobile", "[chat] customer: my cell is {v}", "Call back on {v} after 5pm",
              "phone={v}; country={c}", "Notes: cust rang from {v}, wants refund", "WhatsApp me: {v}"),
    "card": ("[chat] customer: card is {v} exp 09/29", "payment_card={v}", "Charged card {v} twice",
             "card number: {v}", "> the card ending... full number {v}"),
    "iban": ("refund_iban,{v},checked", "Please refund to IBAN {v}", "bank account (IBAN): {v}",
             "iban={v}; bic=NDEASESS"),
    "ssn": ("tax_id,{v},us", "[chat] customer: social security number {v}", "SSN {v} on file for the W-9",
            "ssn={v}"),
    "nino": ("ni_number,{v},uk", "National Insurance number: {v}", "[chat] customer: my NI no is {v}"),
    "ip": ('{{"event":"login","client_ip":"{v}","ok":true}}', "Blocked login from {v} at 03:12 UTC",
           "remote_addr={v} ua=Mozilla/5.0", "seen from IP {v} (VPN?)"),
    "secret": ("AWS_KEY={v}", 'curl -H "Authorization: Bearer {v}" https://api.example.com',
               '{{"api_key": "{v}"}}', "[chat] customer: here is my token {v} can you check",
               "export SERVICE_TOKEN={v}"),
}
GLUES = {"phone": ("tel:{v}", "Tel.{v}", "mobile#{v}"), "card": ("card:{v}", "CC#{v}"),
         "iban": ("IBAN:{v}", "acct={v}"), "ssn": ("SSN:{v}", "ssn#{v}"), "nino": ("NINO:{v}",),
         "email": ("mailto:{v}",), "ip": ("ip={v}",), "secret": ("token:{v}",)}
COUNTRIES = ("BR", "JP", "AU", "IN", "PL", "SE", "MX", "ZA", "US")


def place(rng: R, frame: str, value: str) -> tuple[str, int]:
    """`frame` with `value` in it, and where the value starts."""
    frame = frame.replace("{n}", rng.choice(FIRST).title()).replace("{c}", rng.choice(COUNTRIES))
    before, after = frame.split("{v}")
    before, after = before.replace("{{", "{").replace("}}", "}"), after.replace("{{", "{").replace("}}", "}")
    return before + value + after, len(before)


# --- evasions ------------------------------------------------------------------------------------

_FULLWIDTH = {ord(d): chr(0xFF10 + int(d)) for d in string.digits}
_ARABIC_INDIC = {ord(d): chr(0x0660 + int(d)) for d in string.digits}


def evade(rng: R, label: str, value: str) -> str:
    """`value` disguised as people and attackers do; still the same value to a reader."""
    kind = rng.randrange(6)
    if label == "email":
        local, domain = value.split("@")
        name, _, tld = domain.rpartition(".")
        return rng.choice((f"{local} (at) {name} (dot) {tld}", f"{local} [at] {domain}",
                           f"{local}\u200b@{domain}", f"{local}\uff20{domain}"))
    if label == "secret":
        return value.lower() if value.startswith(("AKIA", "AIza")) and kind < 3 else value
    if kind == 0:
        return value.translate(_FULLWIDTH)
    if kind == 1 and label not in ("iban", "nino"):
        return value.translate(_ARABIC_INDIC)
    if kind == 2 and " " in value:
        return value.replace(" ", rng.choice(("\u00a0", "\u2009")))
    if kind in (2, 3):
        middle = len(value) // 2
        return value[:middle] + "\u200d" + value[middle:]
    if kind == 4 and " " in value:
        return value.replace(" ", rng.choice(("/", "_", " . ", "\u202f")))
    return value.replace(" ", "")


# --- hard negatives ------------------------------------------------------------------------------

def negative(rng: R) -> str:
    kind = rng.randrange(14)
    if kind == 0:
        hexes = [_token(rng, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12)]
        return f"request_id={'-'.join(hexes)} status=200"
    if kind == 1:
        return f"fixed in commit {_token(rng, 40, '0123456789abcdef')[:rng.choice((7, 12, 40))]}"
    if kind == 2:
        amount = f"{rng.randint(10, 99_999):,}.{num(rng, 2)}"
        return f"Refunded {amount} BRL on 2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    if kind == 3:
        return f"[{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}] agent joined the chat"
    if kind == 4:  # a 16-digit number failing Luhn
        body = "4" + num(rng, 14)
        bad = body + str((int(check_digit(body)[-1]) + rng.randint(1, 9)) % 10)
        return f"reference {grouped(bad, (4, 4, 4, 4), ' ')} for the claim"
    if kind == 5:
        return f"ID {rng.choice(('000', '666', '912'))}-{num(rng, 2)}-{num(rng, 4)} is not a valid SSN"
    if kind == 6:
        major_minor = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}"
        return f"build {major_minor}.{rng.randint(0, 99)}.{rng.randint(100, 9999)} rolled out"
    if kind == 7:
        return f"Ticket #{num(rng, 9)} merged into #{num(rng, 9)}"
    if kind == 8:
        return f"tracking 1Z{_token(rng, 6, string.ascii_uppercase + string.digits)}{num(rng, 10)} (UPS)"
    if kind == 9:
        first_two = f"{rng.randint(256, 999)}.{rng.randint(0, 255)}"
        return f"address {first_two}.{rng.randint(0, 255)}.{rng.randint(0, 255)} is invalid"
    if kind == 10:
        return f"Order {num(rng, 3)}-{num(rng, 7)}-{num(rng, 7)} shipped"
    if kind == 11:
        return f"IBAN format is CCkk BBBB ... e.g. XX{num(rng, 2)} {num(rng, 4)} {num(rng, 4)}"
    if kind == 12:
        return f"sku={_token(rng, 3, string.ascii_uppercase)}-{num(rng, 5)}-{num(rng, 2)}, qty {rng.randint(1, 9)}"
    return f"Zip {num(rng, 5)}-{num(rng, 4)}, {rng.randint(1, 999)} Main St"


CLEAN = ("Thanks for your patience while we looked into this.", "Ich habe das Paket noch nicht erhalten.",
         "Le remboursement a été effectué hier.", "Obrigado pelo retorno rápido!", "The app crashes on login.",
         "Could you escalate this to billing?", "We have updated the shipping address as requested.",
         "Dziękuję za pomoc.", "Tack för hjälpen!", "No further action needed, closing the ticket.")


def generate(seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    records: list[dict[str, object]] = []

    def emit(subset: str, text: str, spans: list[Span]) -> None:
        records.append({"id": len(records), "subset": subset, "lang": "mixed", "text": text,
                        "spans": [{"label": lb, "start": s, "end": e} for lb, s, e in spans]})

    labels = sorted(VALUES)
    for i in range(1200):  # plain: a value in a frame, sometimes a clean sentence around it
        label = labels[i % len(labels)]
        value = VALUES[label](rng)
        text, at = place(rng, rng.choice(FRAMES[label]), value)
        lead = rng.choice(CLEAN) + "\n" if rng.random() < 0.3 else ""
        emit("plain", lead + text, [(label, len(lead) + at, len(lead) + at + len(value))])
    for i in range(500):  # evasions: disguised, or glued to a label
        label = labels[i % len(labels)]
        value = VALUES[label](rng)
        if rng.random() < 0.25:
            text, at = place(rng, rng.choice(GLUES[label]), value.replace(" ", ""))
            value = value.replace(" ", "")
        else:
            value = evade(rng, label, value)
            text, at = place(rng, rng.choice(FRAMES[label]), value)
        emit("evasion", text, [(label, at, at + len(value))])
    for _ in range(600):
        emit("negative", negative(rng), [])
    for _ in range(200):
        emit("prose", " ".join(rng.sample(CLEAN, rng.randint(1, 3))), [])
    return records


if __name__ == "__main__":
    OUT.write_text(render(generate()), encoding="utf-8", newline="\n")
    print(f"wrote {OUT}")
