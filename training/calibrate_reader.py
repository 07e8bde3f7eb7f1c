"""Fit the calibrators and choose the abstention threshold end to end through the engine (retrieval included), on
data held out of the reader's and the evidence model's training:
- the SQuAD articles held out of the reader's training, each asked over a corpus of its own article (the bot
  serves an article); a proposal is right when the sentences it quotes hold a gold answer;
- BoolQ's calibration part (training/boolq.py): yes/no questions as people type them, asked over a corpus of half
  of their paragraphs, so that the other half are questions the corpus does not answer; a proposal is right when
  it quotes the question's own paragraph;
- yes/no questions made from the held-out articles' questions by grammar (training/yes_no.py), asking about the
  answer or another value of its sort ("Was it held in Busan?"): right when the quote holds the gold answer, which
  settles them either way; made from an unanswerable question, unanswerable;
- bare keywords, as people type them in chat: the held-out articles' own short answers (a name, a place, a thing)
  asked of their article, where a proposal is right when it quotes the keyword, and as many taken from the other
  held-out articles that the article never mentions, which it cannot answer.
Each proposal the answerer weighs becomes a row of evidence; a logistic model is fitted per answerer ("evidence",
"reader" and, for READER_MODEL=none, "retrieval"). The figures printed are out of fold: each article (BoolQ
counting as two) is scored by a model fitted on the others. The threshold is the highest probability at which at
least `--target` of all answerable questions are still answered, out of fold; the shipped models are then fitted
on everything. Usage:

    python training/calibrate_reader.py [--reader bundled|PATH] [--target 0.9]
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import re
import sys
import tempfile
from itertools import groupby
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer import Answerer, Candidate
from bot.calibration import BUNDLED, CALIBRATION, FEATURES, Calibrator
from bot.engine import Engine
from bot.evidence import Evidence
from bot.question import kind
from bot.reader import BUNDLED_DIR, CARD, Reader
from bot.settings import load_settings
from index.embedder import Embedder
from training import boolq
from training.squad import TRAIN_DATA, contains_answer, f1, load_articles, normalize, questions, roc_auc, write_corpus
from training.yes_no import made_from, value_pool

# FEATURES holds only evidence whose scale does not depend on the corpus's size: the fused retrieval score is a
# z-score over the candidates, so it shifts between an article of 12 passages and one of 80.
UNFITTED = Calibrator((), (), (), (), 0.0, 0.0)  # proposals are collected before any calibrator exists


def collect(engine: Engine, rows: list[dict], features: tuple[str, ...]) -> list[dict]:
    """Per question: its proposals' feature rows, whether each is right, and their short answers."""
    out = []
    for row in rows:
        candidates = engine.candidates(row["question"])
        out.append(
            row
            | {
                "x": np.array([[c.features[f] for f in features] for c in candidates]).reshape(-1, len(features)),
                "right": np.array([is_right(row, c) for c in candidates], dtype=bool),
                "short": [c.short_answer for c in candidates],
            }
        )
    return out


def is_right(row: dict, candidate: Candidate) -> bool:
    """A SQuAD proposal (or a keyword's) is right when its quoted sentences hold a gold answer (the keyword); a
    BoolQ one (no answer text) when it quotes the question's own paragraph."""
    if row["impossible"]:
        return False
    if row["answers"]:
        return contains_answer(candidate.quote, row["answers"])
    found = candidate.found
    return (found.document.id, found.paragraph) == (row["document"], row["paragraph"])


def boolq_rows(rows: list[dict], folder: Path) -> list[dict]:
    """BoolQ's calibration questions over a corpus of half their paragraphs (written to `folder`): the questions
    whose paragraph was left out are ones the corpus does not answer."""
    kept = [row for row in rows if boolq.bucket(row["passage"]) % 2 == 0]
    places = dict(zip((row["passage"] for row in kept), boolq.write_corpus(kept, folder), strict=True))
    return [
        {
            "question": row["question"],
            "article": f"BoolQ {i % 2}",
            "document": places.get(row["passage"], ("", 0))[0],
            "paragraph": places.get(row["passage"], ("", 0))[1],
            "answers": [],
            "impossible": row["passage"] not in places,
        }
        for i, row in enumerate(rows)
    ]


def keyword_rows(article: dict, others: list[dict], per_article: int, seed: int = 13) -> list[dict]:
    """Keywords asked of `article`'s corpus (see the module's docstring): half its own, half it never mentions."""
    text = normalize(" ".join(p["context"] for p in article["paragraphs"]))
    own = _keywords([article])
    foreign = [k for k in _keywords(others) if normalize(k) not in text]
    rng = random.Random(seed)
    picked = rng.sample(own, min(per_article, len(own))) + rng.sample(foreign, min(per_article, len(foreign)))
    return [{"question": k, "article": article["title"], "answers": [k], "impossible": k not in own} for k in picked]


def yes_no_rows(article: dict, per_article: int, seed: int = 13) -> list[dict]:
    """Yes/no questions made from `article`'s questions (see the module's docstring): up to `per_article` from
    answerable questions and as many from unanswerable ones."""
    rng, pool = random.Random(seed), value_pool(article)
    made: dict[bool, list[dict]] = {True: [], False: []}
    for row in questions([article]):
        original = next(qa for p in article["paragraphs"] for qa in p["qas"] if qa["question"] == row["question"])
        answers = original["answers"] or original.get("plausible_answers") or []
        asked = made_from(row["question"], answers, pool, rng)
        if asked is not None:
            made[row["impossible"]].append(row | {"question": asked[0], "source": "yes/no made from SQuAD"})
    return [r for rows in made.values() for r in rng.sample(rows, min(per_article, len(rows)))]


def _keywords(articles: list[dict]) -> list[str]:
    """The distinct short answers of the articles' questions that read as a bare keyword: 1 to 4 words, not just
    a number."""
    answers = (r["answers"][0] for r in questions(articles) if r["answers"])
    return sorted({a for a in answers if kind(a) == "keyword" and re.search(r"[^\W\d]", a)})


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
    parser.add_argument("--keywords", type=int, default=30, help="keywords of each kind asked of each article")
    parser.add_argument("--yes-no", type=int, default=30, help="made-up yes/no questions of each kind per article")
    parser.add_argument("--limit", type=int, help="only the first N questions of each article (smoke runs)")
    parser.add_argument("--dump", type=Path, help="also pickle the collected evidence here, for analysis")
    args = parser.parse_args()

    folder = BUNDLED_DIR if args.reader == BUNDLED else Path(args.reader)
    if not (folder / CARD).is_file():
        sys.exit(
            f"{folder / CARD} is missing: calibrate a reader written by training/train_reader.py, whose card "
            "names the articles it never saw (calibrating on articles a reader was trained on overstates it)"
        )
    card = json.loads((folder / CARD).read_text("utf-8"))
    held_out = [a for a in load_articles(args.data) if a["title"] in card["training"]["held_out"]]
    rows = [
        r for _, group in groupby(questions(held_out), key=lambda r: r["article"]) for r in list(group)[: args.limit]
    ]
    embedder = Embedder().load()
    reader = Reader.load(args.reader)
    answerers = {
        "evidence": Answerer(reader, UNFITTED, 0.0, evidence=Evidence.load(bf16=reader.bf16), passages=args.passages),
        "reader": Answerer(reader, UNFITTED, 0.0, passages=args.passages),
        "retrieval": Answerer(None, UNFITTED, 0.0, passages=args.passages),
    }
    data: dict[str, list[dict]] = {kind: [] for kind in answerers}
    with tempfile.TemporaryDirectory() as tmp:
        corpora = []
        for n, article in enumerate(held_out):  # each article its own corpus, as the bot is deployed on an article
            write_corpus([article], Path(tmp) / f"corpus{n}")
            asked = [r | {"document": "000.txt"} for r in rows if r["article"] == article["title"]]
            others = [a for a in held_out if a is not article]
            asked += keyword_rows(article, others, args.keywords)[: args.limit]
            asked += yes_no_rows(article, args.yes_no)[: args.limit]
            corpora.append((Path(tmp) / f"corpus{n}", asked))
        corpora.append(
            (Path(tmp) / "boolq", boolq_rows(boolq.load_part("calibration")[: args.limit], Path(tmp) / "boolq"))
        )
        print(
            f"calibrating on {', '.join(a['title'] for a in held_out)} and BoolQ: "
            f"{sum(len(asked) for _, asked in corpora)} questions",
            flush=True,
        )
        for n, (corpus, asked) in enumerate(corpora):
            settings = load_settings(corpus_dir=corpus, index_dir=Path(tmp) / f"index{n}", _env_file=None)
            for kind, answerer in answerers.items():
                engine = Engine(settings, embedder, answerer)
                data[kind] += collect(engine, asked, FEATURES[kind])
    if args.dump:
        with args.dump.open("wb") as handle:
            pickle.dump(data, handle)
    calibration = {}
    for kind, collected in data.items():
        decisions = out_of_fold(collected, FEATURES[kind])
        threshold = threshold_for(decisions, collected, args.target)
        figures = {source: report(*subset(decisions, collected, pick), threshold) for source, pick in SOURCES.items()}
        x, y = np.vstack([q["x"] for q in collected]), np.concatenate([q["right"] for q in collected])
        calibration[kind] = fit(x, y, FEATURES[kind]).to_json() | {
            "threshold": round(threshold, 4),
            "target_answered": args.target,
            "passages": args.passages,
            "held_out_articles": [a["title"] for a in held_out] + ["BoolQ calibration part"],
            "out_of_fold": figures,
        }
        print(f"{kind}: threshold {threshold:.3f}; out of fold: {json.dumps(figures)}", flush=True)
    (folder / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n", encoding="utf-8")
    print(f"written {folder / CALIBRATION}")


def subset(decisions: list, collected: list[dict], pick) -> tuple[list, list[dict]]:
    """The decisions and questions of one source."""
    chosen = [i for i, q in enumerate(collected) if pick(q)]
    return [decisions[i] for i in chosen], [collected[i] for i in chosen]


SOURCES = {
    "all": lambda q: True,
    "squad": lambda q: not q["article"].startswith("BoolQ") and kind(q["question"]) != "keyword" and "source" not in q,
    "yes/no made from SQuAD": lambda q: "source" in q,
    "keywords": lambda q: not q["article"].startswith("BoolQ") and kind(q["question"]) == "keyword",
    "boolq": lambda q: q["article"].startswith("BoolQ"),
} | {f"kind {k}": (lambda q, k=k: kind(q["question"]) == k) for k in ("span", "yes_no", "describe", "list", "keyword")}


if __name__ == "__main__":
    main()
