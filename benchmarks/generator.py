"""Generated answers from the model server GENERATOR_URL names (with GENERATOR_MODEL, GENERATOR_API_KEY if it
needs one, GENERATOR_TIMEOUT_SECONDS), checked by bot/grounding.py, on two sets: the Normans + Rhine SQuAD 2.0
questions (benchmarks/quality.py's file, both articles one corpus) and the development set (tests/devset/, as
benchmarks/devset.py loads it; a follow-up is asked after the question it follows, with that history).

Each question is asked as the bot asks it: the extractive answer first (`Engine.ask`), then `Generator.write` on
it, which sends only what the extractive path answered. Per set, on the answerable questions:

- sentences kept: the share of the model's sentences the citation check keeps (a draft saying the passages do
  not answer is counted as a refusal, not as sentences);
- kept citing gold: the share of kept sentences citing a passage that holds the gold answer (one of SQuAD's
  answers, normalised as SQuAD does; one of the development set's facts, case aside);
- answer in reply: the gold answer in what a member reads (the generated answer, or the extractive one it fell
  back to) next to the extractive answer alone;
- time from the question to the draft's first token and to the checked answer (the extractive answer's time
  included, and shown alone), median and 90th percentile, each engine warmed by one question first.

On the unanswerable ones (SQuAD's impossible questions; the development set's decoys and off-topic questions):
how many were sent to the model at all (only those the extractive path wrongly answered may be) and what the
model made of them. "Sent" is read from the outcome: a draft was checked, or the server failed.

The figures measure the model as much as the check: the output names the server and the model. Without
GENERATOR_URL the script says so and exits. `--limit N` takes the first N answerable and N unanswerable questions
of each set. Usage:

    GENERATOR_URL=http://localhost:11434/v1 GENERATOR_MODEL=llama3.2 python benchmarks/generator.py [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.devset import DEVSET, load_sets
from bot.engine import Engine
from bot.grounding import REFUSAL
from bot.history import Turn
from bot.replies import Answer
from bot.settings import SettingsError, load_settings
from index.embedder import Embedder
from training.squad import BENCHMARK_DATA, contains_answer, load_articles, questions, write_corpus

RESULTS = ROOT / "benchmarks" / "results" / "generator.json"
NO_SERVER = (
    "GENERATOR_URL is not set: no model server to measure "
    "(GENERATOR_URL=http://localhost:11434/v1 GENERATOR_MODEL=… make bench-generator)"
)
REASONS = {  # bot/grounding.py's reasons, by how they start
    "cites no passage": "no citation",
    "cites [": "a passage it was not given",
    "the number": "a number not in the cited passage",
    "“": "a name not in the cited passage",
    "not supported": "similarity below the threshold",
}

Holds = Callable[[str], bool]  # whether a text holds the question's gold answer


@dataclass(frozen=True)
class Question:
    text: str
    holds: Holds | None  # None: the corpus does not answer it
    after: str | None = None  # the question it follows up


@dataclass(frozen=True)
class Corpus:
    folder: Path
    questions: list[Question]


@dataclass
class Outcome:
    """One question: what the extractive path and the generator did with it, and how long it took."""

    question: str
    answerable: bool
    answered_extractively: bool
    sent: bool
    failure: str | None
    generated: bool
    refused: bool
    kept: int
    dropped: int
    kept_citing_gold: int
    reply_holds_gold: bool | None
    extractive_holds_gold: bool | None
    extractive_ms: float
    first_token_ms: float | None
    checked_ms: float | None
    dropped_reasons: list[str]


class Failures(logging.Handler):
    """The generator's log lines (a failing server is one warning each)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def squad_set(folder: Path) -> list[Corpus]:
    """The Normans + Rhine articles written as one corpus in `folder`, with their questions."""
    articles = load_articles(BENCHMARK_DATA)
    write_corpus(articles, folder / "squad")
    return [Corpus(folder / "squad", [Question(row["question"], squad_gold(row)) for row in questions(articles)])]


def squad_gold(row: dict) -> Holds | None:
    """One of the question's answers, normalised as SQuAD does; None for an impossible question."""
    return None if row["impossible"] else partial(contains_answer, golds=row["answers"])


def devset(_folder: Path) -> list[Corpus]:
    """The development set's articles, each its own corpus, with their questions."""
    return [
        Corpus(DEVSET / Path(data["article"]).parent, [devset_question(case) for case in data["questions"]])
        for data in load_sets().values()
    ]


def devset_question(case: dict) -> Question:
    """A case as training.cases.is_right reads it: answerable when it has a fact and is not marked to abstain."""
    if case.get("abstain") or "fact" not in case:
        return Question(case["question"], None, case.get("after"))
    facts = case["fact"] if isinstance(case["fact"], list) else [case["fact"]]
    return Question(case["question"], partial(quotes, facts), case.get("after"))


def quotes(facts: list[str], text: str) -> bool:
    return any(fact.lower() in text.lower() for fact in facts)


SETS: dict[str, Callable[[Path], list[Corpus]]] = {
    "Normans + Rhine (SQuAD 2.0 dev)": squad_set,
    "development set": devset,
}


def limited(corpora: list[Corpus], limit: int | None) -> list[Corpus]:
    """The corpora with only the set's first `limit` answerable and first `limit` unanswerable questions."""
    if limit is None:
        return corpora
    left = {True: limit, False: limit}
    chosen = []
    for corpus in corpora:
        kept = []
        for question in corpus.questions:
            answerable = question.holds is not None
            if left[answerable] > 0:
                kept.append(question)
                left[answerable] -= 1
        chosen += [Corpus(corpus.folder, kept)] if kept else []
    return chosen


async def measure(engine: Engine, question: Question, failures: Failures) -> Outcome:
    """Ask one question as the bot does (extractive answer, then the generator on it) and judge both."""
    assert engine.generator is not None
    history = [Turn.of(engine.ask(question.after))] if question.after else []
    first_token: list[float] = []

    async def show(draft: str) -> None:
        if draft and not first_token:  # a stream opens with an empty delta (the role): not a token yet
            first_token.append(time.perf_counter())

    failures.messages.clear()
    started = time.perf_counter()
    extractive = engine.ask(question.text, history)
    answer = await engine.generator.write(extractive, history, show)
    finished = time.perf_counter()
    return Outcome(
        **judge(question, extractive, answer, failures.messages[0] if failures.messages else None),
        extractive_ms=round(extractive.latency_ms, 1),
        first_token_ms=ms(first_token[0] - started) if first_token else None,
        checked_ms=ms(finished - started) if "generate" in answer.timings_ms else None,
    )


def judge(question: Question, extractive: Answer, answer: Answer, failure: str | None) -> dict:
    """What became of the question (the fields of an Outcome but its times)."""
    refused = bool(answer.dropped) and answer.dropped[0].text == REFUSAL
    cited = {c.n: c.text for c in answer.citations}
    holds = question.holds
    kept_gold = sum(any(holds(cited[n]) for n in s.citations) for s in answer.sentences) if holds is not None else 0
    return {
        "question": question.text,
        "answerable": holds is not None,
        "answered_extractively": not extractive.abstained,
        "sent": "generate" in answer.timings_ms or failure is not None,
        "failure": failure,
        "generated": answer.generated,
        "refused": refused,
        "kept": len(answer.sentences),
        "dropped": 0 if refused else len(answer.dropped),
        "kept_citing_gold": kept_gold,
        "reply_holds_gold": None if holds is None else not answer.abstained and holds(answer.text),
        "extractive_holds_gold": None if holds is None else not extractive.abstained and holds(extractive.text),
        "dropped_reasons": [] if refused else [reason_kind(d.reason) for d in answer.dropped],
    }


def reason_kind(reason: str) -> str:
    return next((kind for start, kind in REASONS.items() if reason.startswith(start)), reason)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def run_set(corpora: list[Corpus], embedder: Embedder, folder: Path) -> list[Outcome]:
    """Every question of the set's corpora, each corpus indexed in `folder` and asked through its engine."""
    failures = Failures()
    logging.getLogger("bot.generator").addHandler(failures)
    outcomes = []
    try:
        for i, corpus in enumerate(corpora):
            settings = load_settings(corpus_dir=corpus.folder, index_dir=folder / f"index-{i}", _env_file=None)
            engine = Engine(settings, embedder)
            engine.ask(corpus.questions[0].text)  # warm: the first answer pays for loading the models
            for question in corpus.questions:
                outcomes.append(await measure(engine, question, failures))
    finally:
        logging.getLogger("bot.generator").removeHandler(failures)
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    """The set's figures: answerable questions, unanswerable ones, times."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    kept, written = sum(o.kept for o in answerable), sum(o.kept + o.dropped for o in answerable)
    drafted = [o for o in outcomes if o.checked_ms is not None]
    return {
        "answerable": len(answerable),
        "answerable_sent": sum(o.sent for o in answerable),
        "generated": sum(o.generated for o in answerable),
        "refused_by_model": sum(o.refused for o in answerable),
        "server_failures": sum(o.failure is not None for o in outcomes),
        "first_failure": next((o.failure for o in outcomes if o.failure is not None), None),
        "sentences_written": written,
        "sentences_kept": kept,
        "kept_share": share(kept, written),
        "kept_citing_gold_share": share(sum(o.kept_citing_gold for o in answerable), kept),
        "answer_in_reply": share(sum(bool(o.reply_holds_gold) for o in answerable), len(answerable)),
        "answer_in_reply_extractive": share(sum(bool(o.extractive_holds_gold) for o in answerable), len(answerable)),
        "dropped_reasons": dict(Counter(r for o in answerable for r in o.dropped_reasons).most_common()),
        "unanswerable": len(unanswerable),
        "unanswerable_answered_extractively": sum(o.answered_extractively for o in unanswerable),
        "unanswerable_sent": sum(o.sent for o in unanswerable),
        "unanswerable_generated": sum(o.generated for o in unanswerable),
        "unanswerable_refused_by_model": sum(o.refused for o in unanswerable),
        "extractive_ms": spread([o.extractive_ms for o in outcomes]),
        "first_token_ms": spread([o.first_token_ms for o in drafted if o.first_token_ms is not None]),
        "checked_answer_ms": spread([o.checked_ms for o in drafted if o.checked_ms is not None]),
    }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def spread(values: list[float]) -> dict[str, float | None]:
    """Median and 90th percentile."""
    if len(values) < 2:
        return {"median": values[0] if values else None, "p90": values[0] if values else None}
    return {
        "median": round(statistics.median(values), 1),
        "p90": round(statistics.quantiles(values, n=10, method="inclusive")[-1], 1),
    }


def print_table(name: str, s: dict, seconds: float) -> None:
    print(f"\n## {name}: {s['answerable']} answerable, {s['unanswerable']} unanswerable ({seconds:.0f} s)")
    extractive, first, checked = s["extractive_ms"], s["first_token_ms"], s["checked_answer_ms"]
    rows = {
        "answerable: sent to the model": f"{s['answerable_sent']} of {s['answerable']}",
        "answerable: generated / refused by the model": f"{s['generated']} / {s['refused_by_model']}",
        "sentences kept by the check": f"{s['kept_share']} ({s['sentences_kept']} of {s['sentences_written']})",
        "kept sentences citing a passage with the gold answer": f"{s['kept_citing_gold_share']}",
        "answer in reply: generator / extractive": f"{s['answer_in_reply']} / {s['answer_in_reply_extractive']}",
        "unanswerable: answered by the extractive path": f"{s['unanswerable_answered_extractively']}",
        "unanswerable: sent to the model": f"{s['unanswerable_sent']}",
        "unanswerable: generated / refused by the model": f"{s['unanswerable_generated']} / "
        f"{s['unanswerable_refused_by_model']}",
        "extractive answer, median / p90 (ms)": f"{extractive['median']} / {extractive['p90']}",
        "first token, median / p90 (ms)": f"{first['median']} / {first['p90']}",
        "checked answer, median / p90 (ms)": f"{checked['median']} / {checked['p90']}",
        "server failures": f"{s['server_failures']}",
    }
    print("| figure | value |\n|---|---|")
    for label, value in rows.items():
        print(f"| {label} | {value} |")
    if s["dropped_reasons"]:
        print("dropped: " + ", ".join(f"{kind} {n}" for kind, n in s["dropped_reasons"].items()))
    if s["first_failure"]:
        print(f"first failure: {s['first_failure']}")


def public(url: str) -> str:
    """The server's URL without credentials (settings refuse them in GENERATOR_URL; never print them anyway)."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


async def run(limit: int | None) -> dict:
    embedder = Embedder().load()
    results = {}
    for name, load in SETS.items():
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            outcomes = await run_set(limited(load(Path(tmp)), limit), embedder, Path(tmp))
            seconds = time.perf_counter() - started
        figures = summary(outcomes)
        print_table(name, figures, seconds)
        results[name] = {"summary": figures, "seconds": round(seconds, 1), "questions": [asdict(o) for o in outcomes]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, help="only the first N answerable and N unanswerable questions of each set"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not os.environ.get("GENERATOR_URL", "").strip():
        print(NO_SERVER)
        return
    try:
        settings = load_settings(_env_file=None)
    except SettingsError as exc:
        sys.exit(str(exc))
    assert settings.generator_url is not None
    server, model = public(settings.generator_url), settings.generator_model
    quick = f", the first {args.limit} answerable and {args.limit} unanswerable questions of each set"
    print(f"model {model} at {server}{quick if args.limit else ''}")
    results = asyncio.run(run(args.limit))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    body = {"server": server, "model": model, "limit": args.limit, "sets": results}
    args.out.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
