"""Follow-up questions with and without their conversation's history, on the conversations of `tests/`.

Each conversation is replayed turn by turn through `Engine.ask`, once with the history (as `chat` and the Discord
threads do) and once with every question asked alone. A turn is right when the answer holds its fact and cites its
paragraph first, or, for a question the article does not answer, when the bot abstains. Usage:

    python benchmarks/conversations.py [--out FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.engine import Engine
from bot.history import Turn
from bot.replies import Answer
from bot.settings import load_settings
from index.embedder import Embedder
from training.cases import is_right

CONVERSATIONS = ROOT / "tests" / "conversations.yaml"
CORPORA = {"wego": None, "rowing": ROOT / "tests" / "articles" / "rowing"}
RESULTS = Path(__file__).resolve().parent / "results" / "conversations.json"
KINDS = ("first", "follow_up", "new_topic")


def kind(position: int, case: dict) -> str:
    return "first" if position == 0 else "follow_up" if case.get("follow_up") else "new_topic"


def replay(engine: Engine, turns: list[dict], history: bool) -> list[bool]:
    """Whether each turn is answered right, asked after the others (with history) or alone."""
    answers: list[Answer] = []
    for case in turns:
        answers.append(engine.ask(case["question"], [Turn.of(a) for a in answers] if history else ()))
    return [is_right(case, answer) for case, answer in zip(turns, answers, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--limit", type=int, help="only the first N conversations (smoke runs)")
    args = parser.parse_args()
    chats = yaml.safe_load(CONVERSATIONS.read_text(encoding="utf-8"))["conversations"][: args.limit]
    embedder = Embedder().load()
    engines = {}
    for name, corpus in CORPORA.items():
        folder = {"corpus_dir": corpus} if corpus else {}
        engines[name] = Engine(load_settings(index_dir=tempfile.mkdtemp(), _env_file=None, **folder), embedder)
    results: dict[str, dict[str, float | None]] = {}
    for label, history in (("with history", True), ("without history", False)):
        tally = {k: [0, 0] for k in KINDS}
        for chat in chats:
            verdicts = replay(engines[chat["article"]], chat["turns"], history)
            for position, (case, ok) in enumerate(zip(chat["turns"], verdicts, strict=True)):
                tally[kind(position, case)][0] += ok
                tally[kind(position, case)][1] += 1
        results[label] = {k: round(good / total, 3) if total else None for k, (good, total) in tally.items()}
        results[label]["turns"] = sum(total for _, total in tally.values())
    print(f"{len(chats)} conversations, {results['with history']['turns']} turns")
    print(f"{'':16}" + "".join(f"{k:>12}" for k in KINDS))
    for label, row in results.items():
        print(f"{label:16}" + "".join(f"{'—' if row[k] is None else f'{row[k]:.3f}':>12}" for k in KINDS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"conversations": len(chats), **results}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
