"""Redaction: quality on the labelled corpus and speed on one core, deskgate beside Presidio and scrubadub.

    python -m bench.redaction [--budget 20] [--calls 1000] [--no-latency | --no-http] [--smoke]

1. Quality on the three labelled corpora (`bench/corpus/`): the tuning corpus the detectors were developed
   on, and two held-out corpora, each written independently and never tuned on (per label: recall,
   label-exact recall, precision; recall on the evasion subset; share of hard negatives and clean
   texts altered), and recall under the mutation test (every labelled value of each corpus with
   other separators, invisible characters, glued labels: `bench.corpus.mutate`), for deskgate's
   detectors, Presidio (`presidio-analyzer` with its predefined pattern recognizers for English plus
   the UK NINO one, on a no-op NLP engine: nothing is downloaded) and scrubadub (default detectors),
   each scored on the labels it covers.
2. Throughput in MB/s and texts/s of CPU time on one core, same run, same texts: corpus texts one by
   one (short, PII-dense: the worst case), 2 KB tickets of corpus texts (dense), and 2 KB tickets
   as support sees them (two texts with PII, two hard negatives, prose).
3. Latency share: median latency of `get_ticket` on a ticket of about 2 KB through deskgate's whole
   chain, with redaction and with a pass-through redactor (`bench.servers.UnsafeNoRedaction`),
   alternating call by call. In memory
   (wall and CPU: one runtime, its redactor and detectors swapped per call), and over Streamable
   HTTP on loopback and over stdio (wall: one server process per variant, `bench.servers`, on the
   same state directory), as agents connect (`--no-http`: in memory only).

Targets: on every corpus and under mutation, recall >= 99% per structured class and >= 97%
on evasions, <= 2% of hard negatives and clean texts altered; >= 5 MB/s on PII-dense text on one core;
redaction adds <= 15% to the median of a 2 KB `get_ticket` read over Streamable HTTP.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import Home, Table, machine, ratio
from bench.corpus import mutate
from bench.corpus import score as corpus  # the labelled corpora, shared with the tests

Span = tuple[str, int, int]




@dataclass(frozen=True)
class Detector:
    name: str
    labels: tuple[str, ...]  # the corpus labels it claims to cover
    predict: Callable[[str], list[Span]]


def deskgate() -> Detector:
    return Detector("deskgate", corpus.LABELS, corpus.predict_deskgate)


def presidio() -> Detector | None:
    try:
        import tldextract
        import tldextract.tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
        from presidio_analyzer.predefined_recognizers import UkNinoRecognizer
    except ImportError:
        return None
    # Presidio's URL and email recognizers ask tldextract, which would fetch the public suffix
    # list from the network: use the snapshot bundled with tldextract instead.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    registry.add_recognizer(UkNinoRecognizer())
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    entities = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "card", "IBAN_CODE": "iban",
                "US_SSN": "ssn", "UK_NINO": "nino", "IP_ADDRESS": "ip"}

    def predict(text: str) -> list[Span]:
        return [(entities[r.entity_type], r.start, r.end) for r in engine.analyze(text, language="en")
                if r.entity_type in entities]

    return Detector("presidio", tuple(entities.values()), predict)


def scrubadub() -> Detector | None:
    try:
        import scrubadub as sd
        import tldextract
        import tldextract.tldextract
    except ImportError:
        return None
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    scrubber = sd.Scrubber()
    kinds = {"email": "email", "phone": "phone", "credit_card": "card", "social_security_number": "ssn",
             "credential": "secret"}

    def predict(text: str) -> list[Span]:
        return [(kinds[f.type], f.beg, f.end) for f in scrubber.iter_filth(text) if f.type in kinds]

    return Detector("scrubadub", tuple(kinds.values()), predict)


# --- 1. quality -----------------------------------------------------------------------------------

def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def quality(detectors: Sequence[Detector], records: list[dict], name: str) -> Table:
    scores = {d.name: corpus.score(records, d.predict, d.labels) for d in detectors}
    table = Table(
        f"Redaction quality on the {name} corpus ({len(records)} texts)",
        ["label", *[f"{d.name} recall / exact / precision" for d in detectors]],
        note="recall: gold span fully covered by predictions of its label; exact: same span; precision: "
             "predictions overlapping a gold span of their label. A tool is scored only on the labels it "
             "covers (-). Hard negatives: texts with look-alikes only (or nothing), flagged when any "
             "prediction of a covered label is made in them.",
    )
    for label in corpus.LABELS:
        cells = []
        for d in detectors:
            t = scores[d.name].per_label[label]
            cells.append(f"{pct(t.recall)} / {pct(t.exact_recall)} / {pct(t.precision)}" if label in d.labels else "-")
        table.add(label, *cells)
    table.add("evasions (recall / exact)", *[
        f"{pct(scores[d.name].evasion.recall)} / {pct(scores[d.name].evasion.exact_recall)}" for d in detectors])
    table.add("hard negatives flagged", *[pct(scores[d.name].negative_rate) for d in detectors])
    return table


def mutations(detectors: Sequence[Detector], corpora: dict[str, list[dict]]) -> Table:
    """Recall on every labelled value of each corpus under each mutation (`bench.corpus.mutate`)."""
    table = Table("Mutation recall (each evasion applied to every labelled value)",
                  ["corpus", "mutation / label", *[d.name for d in detectors]],
                  note="separators: digit groups rejoined by tab, |, :, ;, *, ~, _, /, runs, line breaks; "
                       "invisible: variation selectors, combining marks, Hangul fillers, braille blank, CGJ, "
                       "zero-width characters; glued: a label or symbol glued to the value (card4111..., no.4111...). "
                       "A tool is scored only on the labels it covers (-).")
    for name, records in corpora.items():
        mutated = list(mutate.every_mutation(records))
        scores = {d.name: corpus.score_mutations([m for m in mutated
                                                  if m["spans"][m["mutated"]]["label"] in d.labels], d.predict)
                  for d in detectors}
        keys = sorted(scores["deskgate"])
        for key in keys:
            table.add(name, key, *[pct(scores[d.name][key].recall) if key in scores[d.name] else "-"
                                   for d in detectors])
        total = {d.name: (sum(t.found for k, t in scores[d.name].items() if k.startswith("kind:")),
                          sum(t.gold for k, t in scores[d.name].items() if k.startswith("kind:"))) for d in detectors}
        table.add(name, "all mutations", *[pct(total[d.name][0] / total[d.name][1]) for d in detectors])
    return table


# --- 2. throughput --------------------------------------------------------------------------------

def tickets(records: list[dict], *, typical: bool, size: int = 2048, seed: int = 5) -> list[str]:
    """About `size`-byte texts: corpus texts in order (dense), or two with PII, two look-alikes and prose."""
    if not typical:
        out, current = [], []
        for r in records:
            current.append(r["text"])
            if sum(len(t) for t in current) >= size:
                out.append("\n\n".join(current))
                current = []
        return out
    rng = random.Random(seed)
    with_pii = [r["text"] for r in records if r["subset"] in ("plain", "evasion")]
    look_alikes = [r["text"] for r in records if r["subset"] == "negative"]
    prose = [r["text"] for r in records if r["subset"] == "prose"]
    out = []
    for _ in range(200):
        parts = [rng.choice(with_pii) for _ in range(2)] + [rng.choice(look_alikes) for _ in range(2)]
        while sum(len(p) for p in parts) < size:
            parts.append(rng.choice(prose))
        rng.shuffle(parts)
        out.append("\n".join(parts))
    return out


def rate(predict: Callable[[str], Any], texts: Sequence[str], budget: float) -> tuple[float, float, int]:
    """(MB/s, texts/s, texts measured) in CPU seconds; best of repeated passes within `budget` seconds."""
    best_bytes_s, best_texts_s, done, spent = 0.0, 0.0, 0, 0.0
    while spent < budget:
        count = size = 0
        began = time.process_time()
        for text in texts:
            predict(text)
            count += 1
            size += len(text.encode())
            if time.process_time() - began > budget:
                break
        elapsed = time.process_time() - began
        spent += elapsed
        if size / elapsed > best_bytes_s:
            best_bytes_s, best_texts_s, done = size / elapsed, count / elapsed, count
        if count < len(texts):
            break  # too slow for a second pass in the budget
    return best_bytes_s / 1e6, best_texts_s, done


def throughput(detectors: Sequence[Detector], records: list[dict], budget: float) -> Table:
    workloads = {
        "corpus texts, one by one": [r["text"] for r in records],
        "2 KB tickets, dense (corpus texts)": tickets(records, typical=False),
        "2 KB tickets, typical (2 with PII, 2 look-alikes, prose)": tickets(records, typical=True),
    }
    table = Table("Redaction throughput on one core (CPU time)",
                  ["workload", "texts", "avg bytes", *[f"{d.name} MB/s" for d in detectors],
                   *[f"{d.name} texts/s" for d in detectors], "deskgate vs presidio"],
                  note="Same texts, same process. Slow tools are measured on as many texts as fit the time budget.")
    for name, texts in workloads.items():
        rates = {d.name: rate(d.predict, texts, budget) for d in detectors}
        avg = sum(len(t.encode()) for t in texts) / len(texts)
        vs = ratio(rates["deskgate"][0], rates["presidio"][0]) if "presidio" in rates else "-"
        table.add(name, len(texts), f"{avg:.0f}", *[f"{rates[d.name][0]:.2f}" for d in detectors],
                  *[f"{rates[d.name][1]:,.0f}" for d in detectors], vs)
    return table


# --- 3. latency share in the chain ----------------------------------------------------------------

@dataclass(frozen=True)
class Ticket:
    """A demo ticket given a note that makes it about 2 KB of data."""

    id: str
    label: str  # typical | dense
    bytes: int  # its redacted data as the agent receives it


async def place_tickets(home: Home, records: list[dict]) -> list[Ticket]:
    """Add the note to each ticket through deskgate's chain (in memory), before any variant is measured."""
    from bench.servers import call_ok, connected
    from deskgate.server.mcp_app import build_mcp_server, fixed_credential
    from deskgate.tools.backend.seed import DEMO

    texts = {  # where each ticket's note comes from
        DEMO.cancel_ticket: ("typical", tickets(records, typical=True, size=TICKET_BYTES)[0]),
        DEMO.pii_ticket: ("dense", "\n".join(r["text"] for r in records[:40])),
    }
    placed = []
    runtime = home.open_runtime()
    try:
        credential = fixed_credential(runtime.authenticator, home.tokens[0])
        async with connected(build_mcp_server(runtime.chain, credential)) as client:
            for ticket, (label, text) in texts.items():
                before = _size(_data(await call_ok(client, "deskgate", "get_ticket", {"ticket_id": ticket})))
                body = _cut(text, TICKET_BYTES - before - NOTE_FIELDS)  # the note brings the ticket to about 2 KB
                await call_ok(client, "deskgate", "add_ticket_note", {"ticket_id": ticket, "body": body})
                result = await call_ok(client, "deskgate", "get_ticket", {"ticket_id": ticket})
                placed.append(Ticket(ticket, label, _size(_data(result))))
    finally:
        await runtime.aclose()
    return placed


def _data(result: Any) -> Any:
    return (result.structured_content or {}).get("data")


TICKET_BYTES = 2048  # a read tool returning a 2 KB ticket
NOTE_FIELDS = 120  # what a note adds to the ticket's JSON besides its body (author, time, envelope)


def _size(data: Any) -> int:
    """Bytes of the ticket's data as the agent receives it: UTF-8 JSON (masks such as `•` are 3 bytes)."""
    return len(json.dumps(data, ensure_ascii=False).encode())


def _cut(text: str, size: int) -> str:
    """At most `size` characters of `text`, ending at a line break (no value cut in half)."""
    return text[: text.rfind("\n", 0, size + 1)] if len(text) > size else text


LATENCY_NOTE = ("typical: two texts with PII, two look-alikes, prose; dense: corpus texts, about 30 values to mask. "
                "Bytes: the redacted data as the agent receives it. Target: redaction adds <= 15% to the "
                "median of a 2 KB ticket read over Streamable HTTP.")


async def latency(home: Home, placed: Sequence[Ticket], *, calls: int, warmup: int) -> Table:
    """In memory: one runtime, its chain's redactor (and detectors) swapped call by call."""
    from bench._common import Summary
    from bench.servers import UnsafeNoRedaction, call_ok, connected
    from deskgate.server.mcp_app import build_mcp_server, fixed_credential

    runtime = home.open_runtime()
    redactor = runtime.chain._redactor
    variants = {"with redaction": redactor, "pass-through": UnsafeNoRedaction()}
    wall: dict[tuple[str, str], list[float]] = {(t.id, kind): [] for t in placed for kind in variants}
    cpu: dict[tuple[str, str], list[float]] = {(t.id, kind): [] for t in placed for kind in variants}
    try:
        credential = fixed_credential(runtime.authenticator, home.tokens[0])
        async with connected(build_mcp_server(runtime.chain, credential)) as client:
            # Variants alternate call by call, so load from other processes and drift hit both alike.
            for i in range(warmup + calls):
                for ticket in placed:
                    for kind in variants if i % 2 else reversed(variants):
                        runtime.chain._redactor = variants[kind]  # the only change between the variants
                        began, began_cpu = time.perf_counter(), time.process_time()
                        await call_ok(client, "deskgate", "get_ticket", {"ticket_id": ticket.id})
                        if i >= warmup:
                            wall[ticket.id, kind].append(time.perf_counter() - began)
                            cpu[ticket.id, kind].append(time.process_time() - began_cpu)
    finally:
        runtime.chain._redactor = redactor
        await runtime.aclose()
    table = Table("Redaction share of a get_ticket read (about 2 KB of ticket data), in memory",
                  ["ticket", "bytes", "variant", "calls", "median ms", "p95 ms", "median CPU ms",
                   "median vs pass-through", "CPU vs pass-through"], note=LATENCY_NOTE)
    for ticket in placed:
        off, off_cpu = Summary.of(wall[ticket.id, "pass-through"]), Summary.of(cpu[ticket.id, "pass-through"])
        for kind in variants:
            s, c = Summary.of(wall[ticket.id, kind]), Summary.of(cpu[ticket.id, kind])
            table.add(ticket.label, f"{ticket.bytes:,}", kind, s.n, f"{s.median:.3f}", f"{s.p95:.3f}",
                      f"{c.median:.3f}", ratio(s.median, off.median), ratio(c.median, off_cpu.median))
    return table


async def latency_processes(home: Home, placed: Sequence[Ticket], *, transport: str, calls: int,
                            warmup: int) -> Table:
    """Over Streamable HTTP on loopback (`transport="http"`) or stdio: one server process per variant on
    the same state directory (same tickets, same token) - `deskgate` and `deskgate-unredacted` - called
    in turn call by call."""
    from bench._common import Summary
    from bench.servers import Kind, UnexpectedResult, call_ok, connected, connected_stdio, serving
    servers: dict[str, Kind] = {"with redaction": "deskgate", "pass-through": "deskgate-unredacted"}
    wall: dict[tuple[str, str], list[float]] = {(t.id, kind): [] for t in placed for kind in servers}
    token = home.tokens[0]
    async with AsyncExitStack() as stack:
        clients = {}
        for variant, kind in servers.items():
            if transport == "http":
                url = await stack.enter_async_context(serving(kind, home.root, home.policy))
                clients[variant] = await stack.enter_async_context(connected(url, token))
            else:
                clients[variant] = await stack.enter_async_context(
                    connected_stdio(kind, home.root, home.policy, token))
        for client in clients.values():
            await client.list_tools()  # every client knows the tool (and its output schema) before timing
        for ticket in placed:  # the pass-through server must really pass through, or the ratio means nothing
            shown = {kind: _data(await call_ok(clients[kind], servers[kind], "get_ticket", {"ticket_id": ticket.id}))
                     for kind in clients}
            if shown["with redaction"] == shown["pass-through"]:
                raise UnexpectedResult(f"{ticket.id}: the same data with and without redaction")
        # Rounds interleave the servers call by call (leading in turn), so drift hits all alike.
        for i in range(warmup + calls):
            for ticket in placed:
                for kind in servers if i % 2 else reversed(servers):
                    began = time.perf_counter()
                    await call_ok(clients[kind], servers[kind], "get_ticket", {"ticket_id": ticket.id})
                    if i >= warmup:
                        wall[ticket.id, kind].append(time.perf_counter() - began)
    name = "Streamable HTTP (loopback" if transport == "http" else "stdio (a child process"
    table = Table(f"Redaction share of a get_ticket read over {name}, one server process each)",
                  ["ticket", "bytes", "variant", "calls", "median ms", "p95 ms", "median vs pass-through",
                   "p95 vs pass-through"],
                  note=f"{LATENCY_NOTE} Every server serves `deskgate serve --transport {transport}`'s way on the "
                       "same state directory, with the default settings (every read audited); "
                       "the pass-through one has `UnsafeNoRedaction` in its chain. Wall time at the client.")
    for ticket in placed:
        off = Summary.of(wall[ticket.id, "pass-through"])
        for kind in servers:
            s = Summary.of(wall[ticket.id, kind])
            table.add(ticket.label, f"{ticket.bytes:,}", kind, s.n, f"{s.median:.3f}", f"{s.p95:.3f}",
                      ratio(s.median, off.median), ratio(s.p95, off.p95))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=20.0, help="CPU seconds per tool and workload")
    parser.add_argument("--calls", type=int, default=1000, help="get_ticket calls per ticket and variant")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--no-latency", action="store_true", help="skip the chain latency part (both transports)")
    parser.add_argument("--no-http", action="store_true", help="measure the latency share in memory only "
                        "(not over HTTP and stdio)")
    parser.add_argument("--dir", type=Path, default=None, help="where the throwaway state directory goes")
    parser.add_argument("--smoke", action="store_true", help="about a second: deskgate only, 50 texts per corpus, "
                        "a short throughput budget, no latency part (checks the benchmark runs)")
    args = parser.parse_args()

    print(f"machine: {machine()}\n", flush=True)
    records = corpus.load()
    corpora = {"tuning": records, "held-out": corpus.load(corpus.HELDOUT), "third": corpus.load(corpus.THIRD)}
    if args.smoke:
        corpora = {name: texts[::len(texts) // 50] for name, texts in corpora.items()}
        records, args.budget, args.no_latency = corpora["tuning"], 0.02, True
    detectors = [d for d in (deskgate(), *(() if args.smoke else (presidio(), scrubadub()))) if d is not None]
    missing = {"presidio", "scrubadub"} - {d.name for d in detectors}
    if missing and not args.smoke:
        print(f"not installed (pip install -e '.[bench]'): {', '.join(sorted(missing))}\n", flush=True)
    for name, texts in corpora.items():
        quality(detectors, texts, name).show()
    mutations(detectors, corpora).show()
    throughput(detectors, records, args.budget).show()
    if not args.no_latency:
        import anyio

        from bench._common import scratch

        with scratch(args.dir, "redaction") as root:
            anyio.run(lambda: _show_latency(root, args))


async def _show_latency(root: Path, args: argparse.Namespace) -> None:
    from bench._common import prepare_home

    home = await prepare_home(root, 200, sessions=1)
    placed = await place_tickets(home, corpus.load())
    (await latency(home, placed, calls=args.calls, warmup=args.warmup)).show()
    if not args.no_http:
        for transport in ("http", "stdio"):
            (await latency_processes(home, placed, transport=transport, calls=args.calls, warmup=args.warmup)).show()


if __name__ == "__main__":
    main()
