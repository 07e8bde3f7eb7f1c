"""Answer quality on SQuAD-format data: paragraph retrieval, short answers, answers in replies, citations and
abstention, with the bundled reader and without one (READER_MODEL=none).

Each article of the file becomes a document of a corpus folder (one paragraph per SQuAD context, so paragraph
numbers match), built and asked through the engine exactly as a user's corpus would be. `--held-out` runs the
SQuAD training articles the reader never trained on (its calibration articles) instead of the benchmark file.
Usage:

    python benchmarks/quality.py [SQUAD_JSON | --held-out] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.calibration import BUNDLED, NONE
from bot.engine import Engine
from bot.reader import BUNDLED_DIR, CARD
from bot.settings import load_settings
from index.embedder import Embedder
from index.retrieval import Fusion
from training.squad import (
    BENCHMARK_DATA,
    TRAIN_DATA,
    contains_answer,
    exact_match,
    f1,
    load_articles,
    questions,
    roc_auc,
    write_corpus,
)

RESULTS = Path(__file__).resolve().parent / "results"
RANKERS = {"dense": Fusion(dense=1, sentence=0, bm25=0), "bm25": Fusion(dense=0, sentence=0, bm25=1), "hybrid": None}
READERS = {"reader": BUNDLED, "no reader": NONE}
METRICS = (
    "short_answer_exact_match",
    "short_answer_f1",
    "answer_contains_gold",
    "first_citation_is_gold",
    "abstains_on_unanswerable",
    "abstains_on_answerable",
    "confidence_roc_auc",
)


def recall(engine: Engine, rows: list[dict]) -> dict:
    """Recall@1/3/5 of the gold paragraph, per ranker."""
    answerable = [r for r in rows if not r["impossible"]]
    found = {name: Counter() for name in RANKERS}
    for row in answerable:
        gold = (row["document"], row["paragraph"])
        for name, fusion in RANKERS.items():
            ranked = list(dict.fromkeys(engine.retrieve(row["question"], fusion)))
            for k in (1, 3, 5):
                found[name][k] += gold in ranked[:k]
    return {name: {f"@{k}": round(c[k] / len(answerable), 3) for k in (1, 3, 5)} for name, c in found.items()}


def answers(engine: Engine, rows: list[dict]) -> dict:
    """Short-answer EM/F1 (an abstention scores 0), gold answer in the reply, first citation, abstention shares
    and the ROC AUC of the confidence (answerable vs unanswerable)."""
    scores, labels = [], []
    em, f, contains, cited, wrong_abstain, right_abstain = [], [], 0, 0, 0, 0
    for row in rows:
        answer = engine.ask(row["question"])
        scores.append(answer.confidence)
        labels.append(not row["impossible"])
        if row["impossible"]:
            right_abstain += answer.abstained
            continue
        wrong_abstain += answer.abstained
        short = "" if answer.abstained else answer.short_answer or ""
        em.append(exact_match(short, row["answers"]))
        f.append(f1(short, row["answers"]))
        contains += not answer.abstained and contains_answer(answer.text, row["answers"])
        first = answer.citations[0] if answer.citations else None
        cited += first is not None and (first.document, first.paragraph) == (row["document"], row["paragraph"])
    n, n_impossible = len(em), len(rows) - len(em)
    return {
        "short_answer_exact_match": round(float(np.mean(em)), 3),
        "short_answer_f1": round(float(np.mean(f)), 3),
        "answer_contains_gold": round(contains / n, 3),
        "first_citation_is_gold": round(cited / n, 3),
        "abstains_on_unanswerable": round(right_abstain / n_impossible, 3) if n_impossible else None,
        "abstains_on_answerable": round(wrong_abstain / n, 3),
        "confidence_roc_auc": round(roc_auc(np.array(scores), np.array(labels)), 3),
    }


def run(articles: list[dict], limit: int | None) -> dict:
    embedder = Embedder().load()
    setups = {"all articles": articles} | ({a["title"]: [a] for a in articles} if len(articles) > 1 else {})
    results = {}
    for name, chosen in setups.items():
        rows = questions(chosen)[:limit]
        with tempfile.TemporaryDirectory() as tmp:
            write_corpus(chosen, Path(tmp) / "corpus")
            started = time.perf_counter()
            result = {"answerable": sum(not r["impossible"] for r in rows), "questions": len(rows)}
            for label, reader in READERS.items():
                settings = load_settings(
                    corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", reader_model=reader, _env_file=None
                )
                engine = Engine(settings, embedder)
                result.setdefault("recall", recall(engine, rows))
                result[label] = answers(engine, rows)
            result["unanswerable"] = result["questions"] - result["answerable"]
            result["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = result
        print_table(name, result)
    return results


def print_table(name: str, r: dict) -> None:
    print(f"\n## {name}: {r['answerable']} answerable, {r['unanswerable']} unanswerable ({r['seconds']} s)")
    print("| ranker | R@1 | R@3 | R@5 |\n|---|---|---|---|")
    for ranker, values in r["recall"].items():
        print(f"| {ranker} | {values['@1']:.3f} | {values['@3']:.3f} | {values['@5']:.3f} |")
    print(f"| metric | {' | '.join(READERS)} |\n|---|{'---|' * len(READERS)}")
    for key in METRICS:
        print(f"| {key.replace('_', ' ')} | {' | '.join(str(r[label][key]) for label in READERS)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=BENCHMARK_DATA, help="a SQuAD-format JSON file")
    parser.add_argument("--held-out", action="store_true", help="the reader's held-out training articles instead")
    parser.add_argument("--limit", type=int, help="only the first N questions of each corpus (smoke runs)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.held_out:
        titles = json.loads((BUNDLED_DIR / CARD).read_text(encoding="utf-8"))["training"]["held_out"]
        articles = [a for a in load_articles(TRAIN_DATA) if a["title"] in titles]
    else:
        articles = load_articles(args.data)
    out = args.out or RESULTS / ("quality-held-out.json" if args.held_out else "quality.json")
    results = run(articles, args.limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    name = "held-out training articles" if args.held_out else args.data.name
    out.write_text(json.dumps({"data": name, "results": results}, indent=2) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
