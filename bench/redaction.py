"""Redaction: quality on the labelled corpus and speed on one core, deskgate beside Presidio and scrubadub.

    python -m bench.redaction [--heldout 3] [--budget 20] [--calls 1000] [--no-latency]

1. Quality on `tests/data/redaction_corpus.jsonl` (per label: recall, label-exact recall, precision;
   recall on the evasion subset; share of hard negatives flagged), for deskgate's detectors,
   Presidio (`presidio-analyzer` with its predefined pattern recognizers for English plus the UK
   NINO one, on a no-op NLP engine: nothing is downloaded) and scrubadub (default detectors), each
   scored on the labels it covers. deskgate is also scored on fresh corpora from other generator
   seeds (held out: values and combinations it was not tuned on).
2. Throughput in MB/s and texts/s of CPU time on one core, same run, same texts: corpus texts one by
   one (short, PII-dense: the worst case), 2 KB tickets of corpus texts (dense), and 2 KB tickets
   as support sees them (two texts with PII, two hard negatives, prose).
3. Latency share: median latency (wall and CPU) of `get_ticket` on a ticket of about 2 KB through
   deskgate's whole chain in memory, with redaction and with a pass-through redactor, alternating
   call by call.

Targets (issue 5): recall >= 99% and precision >= 98% per structured class, recall >= 95% on
evasions, <= 2% of hard negatives flagged, >= 5 MB/s, redaction < 10% of a 2 KB ticket read.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import Table, machine, ratio
from tests.data import corpus, make_corpus  # the labelled corpus and its generator, shared with the tests

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


def quality(detectors: Sequence[Detector], records: list[dict]) -> Table:
    scores = {d.name: corpus.score(records, d.predict, d.labels) for d in detectors}
    table = Table(
        f"Redaction quality on the labelled corpus ({len(records)} texts)",
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


def heldout(seeds: Iterable[int]) -> Table:
    table = Table("deskgate on held-out corpora (other generator seeds)",
                  ["seed", "texts", "lowest recall", "lowest precision", "evasion recall", "negatives flagged"])
    det = deskgate()
    for seed in seeds:
        records = make_corpus.generate(seed)
        score = corpus.score(records, det.predict)
        recall = min(score.per_label.items(), key=lambda kv: kv[1].recall)
        precision = min(score.per_label.items(), key=lambda kv: kv[1].precision)
        table.add(seed, len(records), f"{pct(recall[1].recall)} ({recall[0]})",
                  f"{pct(precision[1].precision)} ({precision[0]})", pct(score.evasion.recall),
                  pct(score.negative_rate))
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

async def latency(root: Path, *, calls: int, warmup: int) -> Table:
    from bench._common import Summary, prepare_home
    from bench.servers import call_ok, connected
    from deskgate.server.mcp_app import build_mcp_server, fixed_credential
    from deskgate.server.redaction.redactor import Redactor
    from deskgate.tools.backend.seed import DEMO

    class UnsafeNoRedaction(Redactor):
        """BENCHMARK ONLY: passes results and audit arguments through unredacted, to measure the difference."""

        def __init__(self) -> None:  # no policy, no key: it redacts nothing
            pass

        def redact_output(self, data: dict[str, Any], pii_map: Any, scopes: Any) -> dict[str, Any]:
            return data

        def redact_for_audit(self, data: dict[str, Any], pii_map: Any) -> dict[str, Any]:
            return data

    records = corpus.load()
    notes = {  # a note that makes each demo ticket about 2 KB of data
        DEMO.cancel_ticket: ("typical", tickets(records, typical=True, size=1700)[0]),
        DEMO.pii_ticket: ("dense", "\n".join(r["text"] for r in records[:40])[:1600]),
    }
    home = await prepare_home(root, 200, sessions=1)
    runtime = home.open_runtime()
    redactors = {"with redaction": runtime.chain._redactor, "pass-through": UnsafeNoRedaction()}
    wall: dict[tuple[str, str], list[float]] = {(t, kind): [] for t in notes for kind in redactors}
    cpu: dict[tuple[str, str], list[float]] = {(t, kind): [] for t in notes for kind in redactors}
    sizes = {}
    try:
        async with connected(build_mcp_server(runtime.chain, fixed_credential(home.tokens[0]))) as client:
            for ticket, (_, body) in notes.items():
                await call_ok(client, "deskgate", "add_ticket_note", {"ticket_id": ticket, "body": body})
                result = await client.call_tool("get_ticket", {"ticket_id": ticket})
                sizes[ticket] = len(json.dumps((result.structured_content or {}).get("data")).encode())
            # Variants alternate call by call, so load from other processes and drift hit both alike.
            for i in range(warmup + calls):
                for ticket in notes:
                    for kind in redactors if i % 2 else reversed(redactors):
                        runtime.chain._redactor = redactors[kind]  # the only change between the variants
                        began, began_cpu = time.perf_counter(), time.process_time()
                        await call_ok(client, "deskgate", "get_ticket", {"ticket_id": ticket})
                        if i >= warmup:
                            wall[ticket, kind].append(time.perf_counter() - began)
                            cpu[ticket, kind].append(time.process_time() - began_cpu)
    finally:
        runtime.chain._redactor = redactors["with redaction"]
        await runtime.aclose()
    table = Table("Redaction share of a get_ticket read (about 2 KB of ticket data), in memory",
                  ["ticket", "bytes", "variant", "calls", "median ms", "p95 ms", "median CPU ms",
                   "median vs pass-through", "CPU vs pass-through"],
                  note="typical: two texts with PII, two look-alikes, prose; dense: corpus texts, about 30 values "
                       "to mask. Bytes: the redacted data as the agent receives it. Target: redaction adds < 10% "
                       "to the median of a typical ticket read.")
    for ticket, (label, _) in notes.items():
        off, off_cpu = Summary.of(wall[ticket, "pass-through"]), Summary.of(cpu[ticket, "pass-through"])
        for kind in redactors:
            s, c = Summary.of(wall[ticket, kind]), Summary.of(cpu[ticket, kind])
            table.add(label, f"{sizes[ticket]:,}", kind, s.n, f"{s.median:.3f}", f"{s.p95:.3f}", f"{c.median:.3f}",
                      ratio(s.median, off.median), ratio(c.median, off_cpu.median))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heldout", type=int, default=3, help="fresh corpora from seeds 1..N")
    parser.add_argument("--budget", type=float, default=20.0, help="CPU seconds per tool and workload")
    parser.add_argument("--calls", type=int, default=1000, help="get_ticket calls per ticket and variant")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--no-latency", action="store_true", help="skip the chain latency part")
    parser.add_argument("--dir", type=Path, default=None, help="where the throwaway state directory goes")
    args = parser.parse_args()

    print(f"machine: {machine()}\n", flush=True)
    records = corpus.load()
    detectors = [d for d in (deskgate(), presidio(), scrubadub()) if d is not None]
    missing = {"presidio", "scrubadub"} - {d.name for d in detectors}
    if missing:
        print(f"not installed (pip install -e '.[bench]'): {', '.join(sorted(missing))}\n", flush=True)
    quality(detectors, records).show()
    heldout(range(1, args.heldout + 1)).show()
    throughput(detectors, records, args.budget).show()
    if not args.no_latency:
        import anyio

        from bench._common import scratch

        with scratch(args.dir, "redaction") as root:
            anyio.run(lambda: _show_latency(root, args))


async def _show_latency(root: Path, args: argparse.Namespace) -> None:
    (await latency(root, calls=args.calls, warmup=args.warmup)).show()


if __name__ == "__main__":
    main()
