"""Train the evidence model: does this sentence, read after the one before it, answer the question?

A cross-encoder on all-MiniLM-L6-v2, started from the bundled reader's encoder (which already reads questions
against passages), trained with a binary loss on two public sets:
- SQuAD 2.0 training articles (the reader's held-out articles stay out): the sentence that holds the gold answer
  is a positive; the paragraph's other sentences that share most words with the question, and for an unanswerable
  question the sentence of its plausible (decoy) answer, are negatives.
- BoolQ's training part (training/boolq.py): yes/no questions as people type them. The paragraph's sentence that
  shares most (IDF-weighted) words with the question is the positive; the closest sentence of the paragraph of
  another question that shares most words with it, and a random other sentence, are negatives.
- With --yes-no, yes/no questions made from the SQuAD questions by grammar (training/yes_no.py): "Was the assembly
  held in Busan?" is settled ("no") by the sentence that says where it was held, so the answer sentence is a
  positive whether the value asked about is the answer or another of its sort; made from an unanswerable
  question, the plausible answer's sentence stays a negative.
A share of SQuAD questions is lower-cased without its question mark, as people type in chat. Word embeddings stay
frozen, so the project ships only the tensors that change. `--init` continues from an evidence model (the shipped
one is the model trained without --yes-no, continued one epoch with it; `make train-evidence`). Usage:

    python training/train_evidence.py [--out bot/evidence_model] [--epochs 2] [--yes-no] [--init DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.evidence import CARD, EVIDENCE_DIR, WEIGHTS, Evidence, encode
from bot.reader import BUNDLED_DIR
from bot.reader import WEIGHTS as READER_WEIGHTS
from bot.tuned import load_tuned, save_tuned
from index.embedder import DEFAULT_MODEL, model_location
from index.passages import SPLITTERS
from training.boolq import load_part
from training.squad import TRAIN_DATA, load_articles, roc_auc, split_articles
from training.train_reader import FROZEN, contexts, seed_everything, train
from training.train_reader import answer_span as reader_answer_span
from training.yes_no import made_from, value_pool

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
                    negatives = _closest(_others(split, holds), question, 2)
                else:
                    negatives = holds + _closest(_others(split, holds), question, 2 - len(holds))
                out += [Pair(question, s[2], s[3], 0.0) for s in negatives]
    return out


def yes_no_pairs(articles: list[dict], rng: random.Random, casual: float) -> list[Pair]:
    """SQuAD questions turned into yes/no ones (training/yes_no.py): for an answerable question, asking about its
    answer or (half the time) another of the article's values of that sort, the answer's sentence is a positive
    and the paragraph's most question-like other sentence a negative; for an unanswerable one, asking about its
    plausible answer, that answer's sentence is a negative."""
    out = []
    for question, label, holds, _, split in _made_yes_no(articles, rng):
        question = _casual(question) if rng.random() < casual else question
        out += [Pair(question, s[2], s[3], label) for s in holds]
        if label:
            out += [Pair(question, s[2], s[3], 0.0) for s in _closest(_others(split, holds), question, 1)]
    return out


def _made_yes_no(articles: list[dict], rng: random.Random) -> Iterator[tuple]:
    """Every yes/no question made from the articles' questions (see `_yes_no_questions`), with its paragraph's
    sentences."""
    for article in articles:
        pool = value_pool(article)
        for paragraph, context in zip(article["paragraphs"], contexts(article), strict=True):
            split = sentences(context.passage, context.before)
            for qa in paragraph["qas"]:
                for made in _yes_no_questions(qa, paragraph, context, split, pool, rng):
                    yield (*made, split)


def _yes_no_questions(qa: dict, paragraph: dict, context, split: list, pool: dict, rng: random.Random) -> list:
    """(yes/no question, label of the answer's sentences, those sentences, whether it asks about the answer itself)
    made from one SQuAD question, if any."""
    answers = qa["answers"] or qa.get("plausible_answers") or []
    if not answers or len(answers[0]["text"].split()) > 6:
        return []
    made = made_from(qa["question"], answers, pool, rng)
    if made is None:
        return []
    span = reader_answer_span(paragraph, answers[0], context)
    holds = [s for s in split if s[0] < span[1] and s[1] > span[0]]
    return [(made[0], 1.0 if qa["answers"] else 0.0, holds, made[1])] if holds else []


def _others(split: list, holds: list) -> list:
    return [s for s in split if s not in holds]


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


def evaluate_yes_no(evidence: Evidence, articles: list[dict]) -> dict:
    """Made-up yes/no questions (training/yes_no.py) given the answer's sentence: scored positive when the value
    asked about is the answer ("yes"), when it is another ("no"), and negative for the sentence of an
    unanswerable question's plausible answer; with the AUC of answerable against unanswerable."""
    rng = random.Random(0)
    scores: dict[str, list[float]] = {"yes": [], "no": [], "unanswerable": []}
    for question, label, holds, itself, _ in _made_yes_no(articles, rng):
        score = float(evidence.scores(question, [(s[2], s[3]) for s in holds]).max())
        scores["unanswerable" if not label else "yes" if itself else "no"].append(score)
    positive = scores["yes"] + scores["no"]
    labels = np.array([True] * len(positive) + [False] * len(scores["unanswerable"]))
    return {
        "questions": {k: len(v) for k, v in scores.items()},
        "yes_positive": round(float((np.array(scores["yes"]) > 0).mean()), 3),
        "no_positive": round(float((np.array(scores["no"]) > 0).mean()), 3),
        "unanswerable_negative": round(float((np.array(scores["unanswerable"]) <= 0).mean()), 3),
        "roc_auc": round(roc_auc(np.array(positive + scores["unanswerable"]), labels), 3),
    }


def starting_model(base: str, init: Path | None) -> tuple[PreTrainedModel, str | dict]:
    """The model to train and what it starts from: the evidence model in `init` (its card's training), or the
    bundled reader's encoder, which already reads questions against passages."""
    if init is not None:
        model, _, card = load_tuned(init, AutoModelForSequenceClassification, WEIGHTS, CARD, "EVIDENCE_MODEL")
        return model, card["training"]
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    reader = {k: v.float() for k, v in load_file(BUNDLED_DIR / READER_WEIGHTS).items() if k.startswith("bert.")}
    model.load_state_dict(reader, strict=False)
    return model, "the bundled reader's encoder"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EVIDENCE_DIR)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--casual", type=float, default=0.2, help="share of SQuAD questions typed as in chat")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--yes-no", action="store_true", help="add yes/no questions made from SQuAD's")
    parser.add_argument("--init", type=Path, help="continue from this evidence model instead of the reader")
    parser.add_argument("--limit", type=int, help="only the first N training pairs and evaluation rows (smoke runs)")
    args = parser.parse_args()

    seed_everything(args.seed)
    rng = random.Random(args.seed)
    training_articles, held_out = split_articles(load_articles(TRAIN_DATA), 4, args.seed)
    pairs = squad_pairs(training_articles, rng, args.casual) + boolq_pairs(load_part("train"), rng)
    if args.yes_no:
        pairs += yes_no_pairs(training_articles, rng, args.casual)
    rng.shuffle(pairs)
    pairs = pairs[: args.limit]
    base = model_location(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = features(tokenizer, pairs)
    positives = sum(p.label for p in pairs)
    print(f"{len(pairs)} pairs ({positives:.0f} positive); held out: {', '.join(a['title'] for a in held_out)}")

    model, init = starting_model(base, args.init)
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
            "yes_no_from_squad": args.yes_no,
            "init": init,
            "minutes": round(seconds / 60, 1),
        },
    }
    save_tuned(model, args.out, WEIGHTS, CARD, card)
    evidence = Evidence.load(args.out)  # the shipped fp16 weights, as loaded in the product
    card["held_out_metrics"] = {
        "squad_held_out_articles": evaluate_squad(evidence, held_out[:1] if args.limit else held_out),
        "boolq_test": evaluate_boolq(evidence, load_part("test")[: args.limit]),
        "yes_no_made_from_squad_held_out": evaluate_yes_no(evidence, held_out[:1] if args.limit else held_out),
    }
    save_tuned(model, args.out, WEIGHTS, CARD, card)
    print(f"trained in {seconds / 60:.1f} min; held out: {card['held_out_metrics']}")


if __name__ == "__main__":
    main()
