"""Answer quality on SQuAD-format data: paragraph retrieval, answers, citations and abstention.

Each article of the file becomes a document of a corpus folder (one paragraph per SQuAD context, so paragraph
numbers match), built and asked through the engine exactly as a user's corpus would be. Usage:

    python benchmarks/quality.py [SQUAD_JSON] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.engine import Engine
from bot.settings import load_settings
from index.embedder import Embedder
from index.retrieval import Fusion

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "dev-v2.0-normans-rhine.json"
RESULTS = Path(__file__).resolve().parent / "results"
RANKERS = {"dense": Fusion(dense=1, sentence=0, bm25=0), "bm25": Fusion(dense=0, sentence=0, bm25=1), "hybrid": None}


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def write_corpus(articles: list[dict], folder: Path) -> None:
    """One document per article: a title line in front matter, then one paragraph per context."""
    folder.mkdir(parents=True)
    for i, article in enumerate(articles):
        body = "\n\n".join(" ".join(p["context"].split()) for p in article["paragraphs"])
        title = json.dumps(article["title"].replace("_", " "))
        (folder / f"{i:03d}.txt").write_text(f"---\ntitle: {title}\n---\n{body}\n", encoding="utf-8")


def questions(articles: list[dict], limit: int | None) -> list[dict]:
    rows = [
        {
            "question": qa["question"],
            "document": f"{i:03d}.txt",
            "paragraph": n,
            "answers": [a["text"] for a in qa["answers"]],
            "impossible": qa.get("is_impossible", False),
        }
        for i, article in enumerate(articles)
        for n, paragraph in enumerate(article["paragraphs"], start=1)
        for qa in paragraph["qas"]
    ]
    return rows[:limit] if limit else rows


def evaluate(engine: Engine, rows: list[dict]) -> dict:
    """Recall@k per ranker, answer/citation accuracy, abstention shares and the confidence's ROC AUC."""
    answerable = [r for r in rows if not r["impossible"]]
    recall = {name: Counter() for name in RANKERS}
    for row in answerable:
        gold = (row["document"], row["paragraph"])
        for name, fusion in RANKERS.items():
            ranked = list(dict.fromkeys(engine.retrieve(row["question"], fusion)))
            for k in (1, 3, 5):
                recall[name][k] += gold in ranked[:k]
    contains = cited = wrong_abstain = 0
    scores, labels, abstained_unanswerable = [], [], 0
    for row in rows:
        answer = engine.ask(row["question"])
        scores.append(answer.confidence)
        labels.append(not row["impossible"])
        if row["impossible"]:
            abstained_unanswerable += answer.abstained
            continue
        wrong_abstain += answer.abstained
        text = normalize(answer.text)
        contains += not answer.abstained and any(normalize(a) in text for a in row["answers"])
        first = answer.citations[0] if answer.citations else None
        cited += first is not None and (first.document, first.paragraph) == (row["document"], row["paragraph"])
    n, n_impossible = len(answerable), len(rows) - len(answerable)
    return {
        "answerable": n,
        "unanswerable": n_impossible,
        "recall": {name: {f"@{k}": round(c[k] / n, 3) for k in (1, 3, 5)} for name, c in recall.items()},
        "answer_contains_gold": round(contains / n, 3),
        "first_citation_is_gold": round(cited / n, 3),
        "abstains_on_unanswerable": round(abstained_unanswerable / n_impossible, 3) if n_impossible else None,
        "abstains_on_answerable": round(wrong_abstain / n, 3),
        "confidence_roc_auc": round(roc_auc(np.array(scores), np.array(labels)), 3),
    }


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that an answerable question scores above an unanswerable one (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def run(path: Path, limit: int | None) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    embedder = Embedder().load()
    setups = {"all articles": data} | ({a["title"]: [a] for a in data} if len(data) > 1 else {})
    results = {}
    for name, articles in setups.items():
        with tempfile.TemporaryDirectory() as tmp:
            write_corpus(articles, Path(tmp) / "corpus")
            settings = load_settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", _env_file=None)
            started = time.perf_counter()
            results[name] = evaluate(Engine(settings, embedder), questions(articles, limit))
            results[name]["seconds"] = round(time.perf_counter() - started, 1)
        print_table(name, results[name])
    return results


def print_table(name: str, r: dict) -> None:
    print(f"\n## {name}: {r['answerable']} answerable, {r['unanswerable']} unanswerable ({r['seconds']} s)")
    print("| ranker | R@1 | R@3 | R@5 |\n|---|---|---|---|")
    for ranker, values in r["recall"].items():
        print(f"| {ranker} | {values['@1']:.3f} | {values['@3']:.3f} | {values['@5']:.3f} |")
    print("| metric | value |\n|---|---|")
    for key in (
        "answer_contains_gold",
        "first_citation_is_gold",
        "abstains_on_unanswerable",
        "abstains_on_answerable",
        "confidence_roc_auc",
    ):
        print(f"| {key.replace('_', ' ')} | {r[key]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="a SQuAD-format JSON file")
    parser.add_argument("--limit", type=int, help="only the first N questions of each corpus (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    results = run(args.data, args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data.name), "results": results}, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
