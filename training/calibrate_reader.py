"""Fit the calibrators and choose the abstention threshold on the SQuAD articles held out of the reader's
training, end to end through the engine (retrieval included).

Every held-out question is asked through the engine over a corpus of its own article (the bot serves an
article); each proposal the answerer weighs (one per passage read) becomes a row of evidence, labelled right
when the sentences it quotes hold a gold answer. A logistic model is fitted per answerer ("reader" and, for
READER_MODEL=none, "retrieval"). The figures printed are out of fold: each article is scored by a model fitted
on the others. The threshold is the highest probability at which at least `--target` of the answerable
questions are still answered, out of fold; the shipped models are then fitted on all held-out articles. Usage:

    python training/calibrate_reader.py [--reader bundled|PATH] [--target 0.9]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from itertools import groupby
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer import Answerer
from bot.calibration import CALIBRATION, Calibrator
from bot.engine import Engine
from bot.reader import BUNDLED, BUNDLED_DIR, CARD, Reader
from bot.settings import load_settings
from index.embedder import Embedder
from training.squad import TRAIN_DATA, contains_answer, f1, load_articles, questions, roc_auc, write_corpus

# Only evidence whose scale does not depend on the corpus's size: the fused retrieval score is a z-score over the
# candidates, so it shifts between an article of 12 passages and one of 80 (and measured no better without it).
FEATURES = {
    "reader": ("margin", "null", "sentence", "rank", "length"),
    "retrieval": ("dense", "sentence", "rank"),
}
UNFITTED = Calibrator((), (), (), (), 0.0, 0.0)  # proposals are collected before any calibrator exists


def collect(engine: Engine, rows: list[dict], features: tuple[str, ...]) -> list[dict]:
    """Per question: its proposals' feature rows, whether each quotes a gold answer, and their short answers."""
    out = []
    for row in rows:
        candidates = engine.candidates(row["question"])
        quotes = [" ".join(engine.store.sentences[s].text for s in c.sentences) for c in candidates]
        out.append(
            row
            | {
                "x": np.array([[c.features[f] for f in features] for c in candidates]),
                "right": np.array([not row["impossible"] and contains_answer(q, row["answers"]) for q in quotes]),
                "short": [c.short_answer for c in candidates],
            }
        )
    return out


def fit(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], l2: float = 1.0) -> Calibrator:
    """Logistic regression on standardised features by Newton's method, lightly L2-regularised."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.diag([l2] * (z.shape[1] - 1) + [0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibrator(features, tuple(mean), tuple(scale), tuple(w[:-1]), float(w[-1]), 0.0)


def decide(calibrator: Calibrator, questions_: list[dict]) -> list[tuple[float, int]]:
    """For each question, the answerer's choice: (probability, index) of its most probable proposal."""
    out = []
    for q in questions_:
        p = calibrator.probabilities(q["x"]) if len(q["x"]) else np.zeros(1)
        out.append((float(p.max()), int(p.argmax())))
    return out


def out_of_fold(questions_: list[dict], features: tuple[str, ...]) -> list[tuple[float, int]]:
    """Each article's decisions by a calibrator fitted on the other held-out articles."""
    decisions: list[tuple[float, int]] = [(0.0, 0)] * len(questions_)
    for article in sorted({q["article"] for q in questions_}):
        train = [q for q in questions_ if q["article"] != article]
        calibrator = fit(np.vstack([q["x"] for q in train]), np.concatenate([q["right"] for q in train]), features)
        test = [i for i, q in enumerate(questions_) if q["article"] == article]
        for i, decision in zip(test, decide(calibrator, [questions_[i] for i in test]), strict=True):
            decisions[i] = decision
    return decisions


def threshold_for(decisions: list[tuple[float, int]], questions_: list[dict], target: float) -> float:
    """The highest threshold that still answers `target` of the answerable questions."""
    answerable = np.array([p for (p, _), q in zip(decisions, questions_, strict=True) if not q["impossible"]])
    return float(np.quantile(answerable, 1 - target, method="lower"))


def report(decisions: list[tuple[float, int]], questions_: list[dict], threshold: float) -> dict:
    """What users would see at `threshold`: separation, refusals, gold answers in replies, short-answer F1."""
    confidence = np.array([p for p, _ in decisions])
    answerable = np.array([not q["impossible"] for q in questions_])
    answered = confidence >= threshold
    chosen = [(q, i) for (_, i), q in zip(decisions, questions_, strict=True)]
    right = np.array([len(q["right"]) > 0 and bool(q["right"][i]) for q, i in chosen])
    shorts = [(q["short"][i], q["answers"]) for q, i in chosen if not q["impossible"] and q["short"]]
    short_f1 = np.mean([f1(s or "", golds) for s, golds in shorts]) if any(s for s, _ in shorts) else None
    return {
        "questions": len(questions_),
        "answerable": int(answerable.sum()),
        "confidence_roc_auc": round(roc_auc(confidence, answerable), 3),
        "refuses_unanswerable": round(float((~answered[~answerable]).mean()), 3),
        "refuses_answerable": round(float((~answered[answerable]).mean()), 3),
        "gold_in_reply": round(float((answered & right)[answerable].mean()), 3),
        "short_answer_f1": None if short_f1 is None else round(float(short_f1), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", default=BUNDLED, help="the reader to calibrate: bundled, or a model folder")
    parser.add_argument("--data", type=Path, default=TRAIN_DATA)
    parser.add_argument("--target", type=float, default=0.9, help="share of answerable questions kept answered")
    parser.add_argument("--passages", type=int, default=3, help="passages read per question (READER_PASSAGES)")
    parser.add_argument("--limit", type=int, help="only the first N questions of each article (smoke runs)")
    parser.add_argument("--dump", type=Path, help="also pickle the collected evidence here, for analysis")
    args = parser.parse_args()

    folder = BUNDLED_DIR if args.reader == BUNDLED else Path(args.reader)
    card = json.loads((BUNDLED_DIR / CARD).read_text(encoding="utf-8"))
    held_out = [a for a in load_articles(args.data) if a["title"] in card["training"]["held_out"]]
    rows = [
        r for _, group in groupby(questions(held_out), key=lambda r: r["article"]) for r in list(group)[: args.limit]
    ]
    print(f"calibrating on {', '.join(a['title'] for a in held_out)}: {len(rows)} questions", flush=True)
    embedder = Embedder().load()
    readers = {"reader": Reader.load(args.reader), "retrieval": None}
    data: dict[str, list[dict]] = {kind: [] for kind in readers}
    for article in held_out:  # each article its own corpus, as the bot is deployed on an article
        with tempfile.TemporaryDirectory() as tmp:
            write_corpus([article], Path(tmp) / "corpus")
            settings = load_settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", _env_file=None)
            asked = [r | {"document": "000.txt"} for r in rows if r["article"] == article["title"]]
            for kind, reader in readers.items():
                engine = Engine(settings, embedder, Answerer(reader, UNFITTED, 0.0, passages=args.passages))
                data[kind] += collect(engine, asked, FEATURES[kind])
    if args.dump:
        with args.dump.open("wb") as handle:
            pickle.dump(data, handle)
    calibration = {}
    for kind, collected in data.items():
        decisions = out_of_fold(collected, FEATURES[kind])
        threshold = threshold_for(decisions, collected, args.target)
        held_out_figures = report(decisions, collected, threshold)
        x, y = np.vstack([q["x"] for q in collected]), np.concatenate([q["right"] for q in collected])
        calibration[kind] = fit(x, y, FEATURES[kind]).to_json() | {
            "threshold": round(threshold, 4),
            "target_answered": args.target,
            "passages": args.passages,
            "held_out_articles": [a["title"] for a in held_out],
            "out_of_fold": held_out_figures,
        }
        print(f"{kind}: threshold {threshold:.3f}; out of fold: {json.dumps(held_out_figures)}", flush=True)
    (folder / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n", encoding="utf-8")
    print(f"written {folder / CALIBRATION}")


if __name__ == "__main__":
    main()
