"""BoolQ's test part through the whole engine: yes/no questions as people type them (lower case, no question mark),
over a corpus of the test part's paragraphs, each question asked with `ask`.

A question is answered right when the bot answers and cites the paragraph that settles it first. Nothing was
trained or calibrated on this part (training/boolq.py splits BoolQ by paragraph). Usage:

    python benchmarks/boolq.py [--limit N] [--out benchmarks/results/boolq.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.engine import Engine
from bot.settings import load_settings
from index.embedder import Embedder
from training import boolq

RESULTS = Path(__file__).resolve().parent / "results" / "boolq.json"


def run(rows: list[dict], embedder: Embedder) -> dict:
    """Retrieval's first paragraph, and the bot's answers: answered, answered citing the right paragraph first."""
    with tempfile.TemporaryDirectory() as tmp:
        places = boolq.write_corpus(rows, Path(tmp) / "corpus")
        settings = load_settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", _env_file=None)
        engine = Engine(settings, embedder)
        started = time.perf_counter()
        first = answered = right = evidence = 0
        for row, place in zip(rows, places, strict=True):
            first += engine.retrieve(row["question"])[0] == place
            answer = engine.ask(row["question"])
            answered += not answer.abstained
            evidence += answer.answer_type == "evidence"
            right += not answer.abstained and (answer.citations[0].document, answer.citations[0].paragraph) == place
    n = len(rows)
    return {
        "questions": n,
        "paragraphs": len(set(places)),
        "retrieval_first_is_right": round(first / n, 3),
        "answered": round(answered / n, 3),
        "answered_citing_the_right_paragraph_first": round(right / n, 3),
        "answered_with_the_wrong_paragraph": round((answered - right) / n, 3),
        "evidence_answers": round(evidence / n, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N questions (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(boolq.load_part("test")[: args.limit], Embedder().load())
    print("| BoolQ test part | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key.replace('_', ' ')} | {value} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
