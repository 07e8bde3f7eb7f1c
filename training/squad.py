"""SQuAD 2.0 files and scores, shared by the reader's training and the quality benchmark: loading, the split by
article, SQuAD's answer normalisation, exact match, F1 and ROC AUC."""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad"
TRAIN_DATA = SHARED / "train" / "squad2-train-21articles.json"
BENCHMARK_DATA = SHARED / "dev-v2.0-normans-rhine.json"
_PUNCTUATION = set(string.punctuation)


def load_articles(path: Path) -> list[dict]:
    """The articles of a SQuAD-format JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def split_articles(articles: list[dict], held_out: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training, held-out) by whole article; held-out articles are drawn among those with unanswerable
    questions, so that calibration sees both kinds."""
    candidates = sorted(a["title"] for a in articles if _has_unanswerable(a))
    chosen = set(random.Random(seed).sample(candidates, min(held_out, len(candidates))))
    return [a for a in articles if a["title"] not in chosen], [a for a in articles if a["title"] in chosen]


def _has_unanswerable(article: dict) -> bool:
    return any(qa.get("is_impossible") for p in article["paragraphs"] for qa in p["qas"])


def write_corpus(articles: list[dict], folder: Path) -> None:
    """One document per article: a title in front matter, then one paragraph per context (so paragraph numbers
    match SQuAD's)."""
    folder.mkdir(parents=True)
    for i, article in enumerate(articles):
        body = "\n\n".join(" ".join(p["context"].split()) for p in article["paragraphs"])
        title = json.dumps(article["title"].replace("_", " "))
        (folder / f"{i:03d}.txt").write_text(f"---\ntitle: {title}\n---\n{body}\n", encoding="utf-8")


def questions(articles: list[dict]) -> list[dict]:
    """Every question of the articles, with the document and paragraph `write_corpus` puts its context in."""
    return [
        {
            "question": qa["question"],
            "article": article["title"],
            "document": f"{i:03d}.txt",
            "paragraph": n,
            "answers": [a["text"] for a in qa["answers"]],
            "impossible": qa.get("is_impossible", False) or not qa["answers"],
        }
        for i, article in enumerate(articles)
        for n, paragraph in enumerate(article["paragraphs"], start=1)
        for qa in paragraph["qas"]
    ]


def contains_answer(text: str, golds: list[str]) -> bool:
    """Whether `text` holds one of the gold answers (both normalised)."""
    normal = normalize(text)
    return any(normalize(g) in normal for g in golds if normalize(g))


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction: str, golds: list[str]) -> float:
    return float(any(normalize(prediction) == normalize(g) for g in golds))


def f1(prediction: str, golds: list[str]) -> float:
    """SQuAD's token F1 against the best-matching gold answer."""
    return max((_f1(normalize(prediction).split(), normalize(g).split()) for g in golds), default=0.0)


def _f1(predicted: list[str], gold: list[str]) -> float:
    common = sum((Counter(predicted) & Counter(gold)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))
