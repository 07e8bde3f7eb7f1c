"""Train the evidence model: does this sentence, read after the one before it, answer the question?

A cross-encoder on all-MiniLM-L6-v2, started from the bundled reader's encoder (which already reads questions
against passages), trained with a binary loss on two public sets:
- SQuAD 2.0 training articles (the reader's held-out articles stay out): the sentence that holds the gold answer
  is a positive; the paragraph's other sentences that share most words with the question, and for an unanswerable
  question the sentence of its plausible (decoy) answer, are negatives.
- BoolQ's training part (training/boolq.py): yes/no questions as people type them. The paragraph's sentence that
  shares most (IDF-weighted) words with the question is the positive; the closest sentence of the paragraph of
  another question that shares most words with it, and a random other sentence, are negatives.
A share of SQuAD questions is lower-cased without its question mark, as people type in chat. Word embeddings stay
frozen, so the project ships only the tensors that change. Usage:

    python training/train_evidence.py [--out bot/evidence_model] [--epochs 2] [--limit N]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.evidence import CARD, EVIDENCE_DIR, WEIGHTS, Evidence, encode
from bot.reader import BUNDLED_DIR
from bot.reader import WEIGHTS as READER_WEIGHTS
from bot.tuned import save_tuned
from index.embedder import DEFAULT_MODEL, model_location
from index.passages import SPLITTERS
from training.boolq import load_part
from training.squad import TRAIN_DATA, load_articles, roc_auc, split_articles
from training.train_reader import FROZEN, contexts, seed_everything, train
from training.train_reader import answer_span as reader_answer_span

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "how",
        "that",
        "this",
        "it",
        "its",
        "as",
    ]
)


@dataclass(frozen=True)
class Pair:
    """A question, a sentence and the sentence before it, and whether the sentence answers the question."""

    question: str
    sentence: str
    before: str
    label: float


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def sentences(text: str, before: str = "") -> list[tuple[int, int, str, str]]:
    """(start, end, sentence, the sentence before it) for each sentence of a paragraph."""
    out, previous = [], before
    for start, end in SPLITTERS["pysbd"](text):
        sentence = text[start:end].strip()
        if sentence:
            out.append((start, end, sentence, previous))
            previous = sentence
    return out


def squad_pairs(articles: list[dict], rng: random.Random, casual: float) -> list[Pair]:
    """Answer sentences as positives; the paragraph's most question-like other sentences and the decoy answer's
    sentence as negatives."""
    out = []
    for article in articles:
        for paragraph, context in zip(article["paragraphs"], contexts(article), strict=True):
            split = sentences(context.passage, context.before)
            for qa in paragraph["qas"]:
                question = _casual(qa["question"]) if rng.random() < casual else qa["question"]
                answers = qa["answers"] or qa.get("plausible_answers") or []
                span = reader_answer_span(paragraph, answers[0], context) if answers else (-1, -1)
                holds = [s for s in split if s[0] < span[1] and s[1] > span[0]]
                if qa["answers"]:
                    out += [Pair(question, s[2], s[3], 1.0) for s in holds]
                    negatives = _closest([s for s in split if s not in holds], question, 2)
                else:
                    negatives = holds + _closest([s for s in split if s not in holds], question, 2 - len(holds))
                out += [Pair(question, s[2], s[3], 0.0) for s in negatives]
    return out


def boolq_pairs(rows: list[dict], rng: random.Random) -> list[Pair]:
    """Each question's best-matching sentence of its own paragraph as the positive; the best-matching sentence of
    the closest other paragraph, and a random sentence of another, as negatives."""
    split = [sentences(" ".join(row["passage"].split())) for row in rows]
    weights = _idf([words(row["passage"]) for row in rows])
    vocab = [words(row["passage"]) for row in rows]
    out = []
    for i, row in enumerate(rows):
        asked = words(row["question"])
        out.append(_best_pair(row["question"], split[i], asked, weights, 1.0))
        closest = max(
            (j for j in range(len(rows)) if j != i and rows[j]["passage"] != row["passage"]),
            key=lambda j: sum(weights.get(w, 0.0) for w in asked & vocab[j]),
        )
        out.append(_best_pair(row["question"], split[closest], asked, weights, 0.0))
        other = rng.choice([j for j in (rng.randrange(len(rows)) for _ in range(3)) if j != i] or [closest])
        _, _, sentence, before = rng.choice(split[other])
        out.append(Pair(row["question"], sentence, before, 0.0))
    return out


def _best_pair(question: str, split: list, asked: set[str], weights: dict[str, float], label: float) -> Pair:
    _, _, sentence, before = max(split, key=lambda s: sum(weights.get(w, 0.0) for w in asked & words(s[2])))
    return Pair(question, sentence, before, label)


def _idf(documents: list[set[str]]) -> dict[str, float]:
    counts = Counter(w for d in documents for w in d)
    return {w: math.log(len(documents) / c) for w, c in counts.items()}


def _closest(candidates: list, question: str, n: int) -> list:
    """The n sentences sharing most words with the question."""
    asked = words(question)
    return sorted(candidates, key=lambda s: -len(asked & words(s[2])))[: max(n, 0)]


def _casual(question: str) -> str:
    """The question as typed in chat: lower case, no question mark."""
    return question.lower().rstrip(" ?")


def features(tokenizer, pairs: list[Pair]) -> list[dict]:
    encoded = encode(tokenizer, [p.question for p in pairs], [(p.sentence, p.before) for p in pairs])
    return [
        {
            "input_ids": encoded["input_ids"][i],
            "token_type_ids": encoded["token_type_ids"][i],
            "attention_mask": encoded["attention_mask"][i],
            "labels": pair.label,
        }
        for i, pair in enumerate(pairs)
    ]


def binary_loss(model, tokenizer) -> Callable[[list[dict]], torch.Tensor]:
    """A batch's loss for the evidence model: binary cross-entropy of its one logit against the pairs' labels."""
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def loss_of(batch: list[dict]) -> torch.Tensor:
        labels = torch.tensor([row["labels"] for row in batch])
        inputs = tokenizer.pad([{k: v for k, v in row.items() if k != "labels"} for row in batch], return_tensors="pt")
        return loss_fn(model(**inputs).logits.squeeze(-1), labels)

    return loss_of


def evaluate_squad(evidence: Evidence, articles: list[dict]) -> dict:
    """Given each question's own paragraph: how often the best-scored sentence holds the answer, and how well the
    best score separates answerable from unanswerable questions."""
    best, answerable, hit = [], [], []
    for article in articles:
        for paragraph, context in zip(article["paragraphs"], contexts(article), strict=True):
            split = sentences(context.passage, context.before)
            for qa in paragraph["qas"]:
                scores = evidence.scores(qa["question"], [(s[2], s[3]) for s in split])
                best.append(float(scores.max()))
                answerable.append(bool(qa["answers"]))
                if qa["answers"]:
                    top = split[int(scores.argmax())][2].lower()
                    hit.append(any(a["text"].lower() in top for a in qa["answers"]))
    best_array, labels = np.array(best), np.array(answerable)
    return {
        "questions": len(best),
        "answer_sentence_first": round(float(np.mean(hit)), 3),
        "roc_auc": round(roc_auc(best_array, labels), 3),
    }


def evaluate_boolq(evidence: Evidence, rows: list[dict]) -> dict:
    """Each question's best sentence score in its own paragraph against that in the closest other paragraph."""
    pairs = boolq_pairs(rows, random.Random(0))
    own, other = [], []
    for i, row in enumerate(rows):
        split = sentences(" ".join(row["passage"].split()))
        own.append(float(evidence.scores(row["question"], [(s[2], s[3]) for s in split]).max()))
        negative = pairs[3 * i + 1]
        other.append(float(evidence.scores(row["question"], [(negative.sentence, negative.before)])[0]))
    scores, labels = np.array(own + other), np.array([True] * len(own) + [False] * len(other))
    return {
        "questions": len(rows),
        "roc_auc": round(roc_auc(scores, labels), 3),
        "own_paragraph_positive": round(float((np.array(own) > 0).mean()), 3),
        "closest_other_negative": round(float((np.array(other) <= 0).mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EVIDENCE_DIR)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--casual", type=float, default=0.2, help="share of SQuAD questions typed as in chat")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, help="only the first N training pairs and evaluation rows (smoke runs)")
    args = parser.parse_args()

    seed_everything(args.seed)
    rng = random.Random(args.seed)
    training_articles, held_out = split_articles(load_articles(TRAIN_DATA), 4, args.seed)
    pairs = squad_pairs(training_articles, rng, args.casual) + boolq_pairs(load_part("train"), rng)
    rng.shuffle(pairs)
    pairs = pairs[: args.limit]
    base = model_location(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = features(tokenizer, pairs)
    positives = sum(p.label for p in pairs)
    print(f"{len(pairs)} pairs ({positives:.0f} positive); held out: {', '.join(a['title'] for a in held_out)}")

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    reader = {k: v.float() for k, v in load_file(BUNDLED_DIR / READER_WEIGHTS).items() if k.startswith("bert.")}
    model.load_state_dict(reader, strict=False)  # start from the reader's encoder: it already reads for answers
    seconds = train(model, tokenizer, rows, args, rng, binary_loss(model, tokenizer), unit="pairs")
    card = {
        "base_model": DEFAULT_MODEL,
        "model_options": {"num_labels": 1},
        "frozen": FROZEN,
        "training": {
            "squad_articles": [a["title"] for a in training_articles],
            "held_out": [a["title"] for a in held_out],
            "boolq_part": "train",
            "pairs": len(pairs),
            "positives": int(positives),
            "epochs": args.epochs,
            "batch": args.batch,
            "lr": args.lr,
            "casual": args.casual,
            "seed": args.seed,
            "init": "the bundled reader's encoder",
            "minutes": round(seconds / 60, 1),
        },
    }
    save_tuned(model, args.out, WEIGHTS, CARD, card)
    evidence = Evidence.load(args.out)  # the shipped fp16 weights, as loaded in the product
    card["held_out_metrics"] = {
        "squad_held_out_articles": evaluate_squad(evidence, held_out[:1] if args.limit else held_out),
        "boolq_test": evaluate_boolq(evidence, load_part("test")[: args.limit]),
    }
    save_tuned(model, args.out, WEIGHTS, CARD, card)
    print(f"trained in {seconds / 60:.1f} min; held out: {card['held_out_metrics']}")


if __name__ == "__main__":
    main()
