"""Choose the citation check's support threshold (bot/grounding.py SUPPORT_THRESHOLD) by measurement.

No generated drafts exist offline, so statements are made from SQuAD 2.0's training articles: a question with its
gold answer ("Who heads the secretariat? Park Jung-sook") stands for a sentence a model writes from a passage.
Cited to the paragraph that holds the answer, it is supported; cited to another paragraph of the same article (the
"true sentence, wrong citation" draft), or made from an unanswerable question with its plausible (wrong) answer
and cited to its own paragraph (an on-topic claim the paragraph does not make), it is not. The similarity is the
check's own: the statement against the cited paragraph's closest sentence.

The threshold is chosen on the first half of the articles (the highest that keeps --keep of the supported
statements) and reported on the other half. Run: `python training/calibrate_support.py`.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.grounding import sentence_spans
from index.embedder import DEFAULT_MODEL, Embedder
from training.squad import TRAIN_DATA, load_articles

SEED = 13


def statements(article: dict, rng: random.Random) -> list[tuple[str, str, bool, str]]:
    """(statement, cited paragraph, supported?, kind) for every question of an article."""
    paragraphs = [p["context"] for p in article["paragraphs"]]
    rows = []
    for i, paragraph in enumerate(article["paragraphs"]):
        others = [p for j, p in enumerate(paragraphs) if j != i]
        for qa in paragraph["qas"]:
            if qa.get("is_impossible"):
                if qa.get("plausible_answers"):
                    claim = f"{qa['question']} {qa['plausible_answers'][0]['text']}"
                    rows.append((claim, paragraphs[i], False, "decoy claim"))
                continue
            claim = f"{qa['question']} {qa['answers'][0]['text']}"
            rows.append((claim, paragraphs[i], True, "supported"))
            if others:
                rows.append((claim, rng.choice(others), False, "wrong passage"))
    return rows


def similarities(embedder: Embedder, rows: list[tuple[str, str, bool, str]]) -> np.ndarray:
    """Each statement's highest similarity to a sentence of its cited paragraph."""
    claims = embedder.encode([r[0] for r in rows])
    paragraphs = sorted({r[1] for r in rows})
    sentences = {p: [p[a:b] for a, b in sentence_spans(p)] or [p] for p in paragraphs}
    flat = [s for p in paragraphs for s in sentences[p]]
    vectors = embedder.encode(flat)
    spans, start = {}, 0
    for p in paragraphs:
        spans[p] = (start, start + len(sentences[p]))
        start += len(sentences[p])
    return np.array([float(np.max(vectors[slice(*spans[r[1]])] @ claims[i])) for i, r in enumerate(rows)])


def report(name: str, rows: list[tuple[str, str, bool, str]], scores: np.ndarray, threshold: float) -> None:
    kept = scores >= threshold
    supported = np.array([r[2] for r in rows])
    print(f"{name}: {len(rows)} statements, threshold {threshold:.2f}")
    print(f"  supported kept            {kept[supported].mean():.3f}  (n={supported.sum()})")
    for kind in ("wrong passage", "decoy claim"):
        mask = np.array([r[3] == kind for r in rows])
        print(f"  {kind:<25} dropped {1 - kept[mask].mean():.3f}  (n={mask.sum()})")
    print(f"  precision of kept         {supported[kept].mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=float, default=0.9, help="share of supported statements to keep (0.9)")
    args = parser.parse_args()
    rng = random.Random(SEED)
    articles = load_articles(TRAIN_DATA)
    rng.shuffle(articles)
    half = len(articles) // 2
    embedder = Embedder(DEFAULT_MODEL).load()
    parts = {}
    for name, part in (("choose", articles[:half]), ("report", articles[half:])):
        rows = [row for article in part for row in statements(article, rng)]
        parts[name] = (rows, similarities(embedder, rows))
    rows, scores = parts["choose"]
    supported = np.array([r[2] for r in rows])
    threshold = float(np.floor(np.quantile(scores[supported], 1 - args.keep) * 100) / 100)
    for name, (rows, scores) in parts.items():
        report(f"{name} ({'first' if name == 'choose' else 'second'} half of the articles)", rows, scores, threshold)


if __name__ == "__main__":
    main()
