"""Train the bundled reader: all-MiniLM-L6-v2 fine-tuned for extractive SQuAD 2.0 question answering, on CPU.

Trains on the SQuAD 2.0 training articles minus a few held out by article, which are only read afterwards to
report how the shipped weights do on text they never saw. Negatives are SQuAD 2.0's unanswerable questions
(written to look answerable, with a plausible answer in the paragraph) and, for a share of the answerable
questions, the paragraph of the same article that shares most words with the question without holding the
answer. Each
paragraph is read after the last sentence of the one before it, as the engine reads passages. Word embeddings
stay frozen, so the project ships only the tensors that change. Usage:

    python training/train_reader.py [--data SQUAD_JSON] [--out bot/reader_model] [--epochs 3] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pysbd
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.reader import (
    BUNDLED_DIR,
    CARD,
    WEIGHTS,
    Context,
    Reader,
    ReaderConfig,
    bf16_pays,
    load_bundled,
    passage_offset,
    windows,
)
from bot.tuned import save_tuned
from index.embedder import DEFAULT_MODEL, model_location
from training.squad import TRAIN_DATA, exact_match, f1, load_articles, roc_auc, split_articles

FROZEN = ["bert.embeddings.word_embeddings.weight"]
_WORD = re.compile(r"\w{4,}")


@dataclass(frozen=True)
class Example:
    """A question, the context it is read in, and the answer's character span in the passage (None: no answer)."""

    question: str
    context: Context
    answers: list[str]
    span: tuple[int, int] | None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def contexts(article: dict) -> list[Context]:
    """Each paragraph with the last sentence of the paragraph before it."""
    segmenter = pysbd.Segmenter(language="en", clean=False)
    texts = [" ".join(p["context"].split()) for p in article["paragraphs"]]
    before = [""] + [segmenter.segment(t)[-1].strip() for t in texts[:-1]]
    return [Context(b, t) for b, t in zip(before, texts, strict=True)]


def examples(articles: list[dict], rng: random.Random, negatives: float, removals: float = 0.0) -> list[Example]:
    """Every question of the articles, plus, for shares of the answerable ones, a same-article paragraph without the
    answer and their own paragraph with the answer's sentences taken out."""
    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True) if removals else None
    out = []
    for article in articles:
        paragraphs = contexts(article)
        for number, paragraph in enumerate(article["paragraphs"]):
            context = paragraphs[number]
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa["answers"]]
                if qa.get("is_impossible") or not answers:
                    out.append(Example(qa["question"], context, [], None))
                    continue
                span = answer_span(paragraph, qa["answers"][0], context)
                out.append(Example(qa["question"], context, answers, span))
                if rng.random() < negatives and (other := _hard_negative(qa["question"], answers, paragraphs, number)):
                    out.append(Example(qa["question"], other, [], None))
                # Testing `removals` first draws no random number when the option is off, so the shipped
                # recipe's sequence of examples stays the same.
                if (
                    removals
                    and rng.random() < removals
                    and (rest := _without_answer(context, span, answers, segmenter))
                ):
                    out.append(Example(qa["question"], rest, [], None))
    return out


def answer_span(paragraph: dict, answer: dict, context: Context) -> tuple[int, int]:
    """The answer's span in the whitespace-normalised passage text."""
    start = len(" ".join((paragraph["context"][: answer["answer_start"]] + "x").split())) - 1
    text = " ".join(answer["text"].split())
    if context.passage[start : start + len(text)] != text:
        start = context.passage.find(text)
    return start, start + len(text)


def _hard_negative(question: str, answers: list[str], paragraphs: list[Context], number: int) -> Context | None:
    """The other paragraph sharing most of the question's words, among those that do not contain an answer."""
    words = set(_WORD.findall(question.lower()))
    best, best_overlap = None, 0
    for i, context in enumerate(paragraphs):
        if i == number or _holds_answer(context.passage, answers):
            continue
        overlap = len(words & set(_WORD.findall(context.passage.lower())))
        if overlap > best_overlap:
            best, best_overlap = context, overlap
    return best


def _without_answer(
    context: Context, span: tuple[int, int], answers: list[str], segmenter: pysbd.Segmenter
) -> Context | None:
    """The paragraph with every sentence that overlaps the answer removed: on topic, but no longer answering
    (None when nothing is left or an answer still appears)."""
    kept = [s.sent for s in segmenter.segment(context.passage) if s.end <= span[0] or s.start >= span[1]]
    rest = "".join(kept).strip()
    if not rest or _holds_answer(f"{context.before} {rest}", answers):
        return None
    return Context(context.before, rest)


def _holds_answer(text: str, answers: list[str]) -> bool:
    """Whether any of the answers appears in the text, ignoring case."""
    lowered = text.lower()
    return any(a.lower() in lowered for a in answers)


def features(tokenizer, rows: list[Example], config: ReaderConfig) -> list[dict]:
    """Tokenised windows with start/end token targets ([CLS] = 0 when the window holds no answer)."""
    encoded = windows(tokenizer, [r.question for r in rows], [r.context for r in rows], config)
    out = []
    for window, owner in enumerate(encoded["overflow_to_sample_mapping"]):
        row = rows[owner]
        start = end = 0
        if row.span is not None:
            shift = passage_offset(row.context)
            start, end = _token_span(encoded.sequence_ids(window), encoded["offset_mapping"][window], row.span, shift)
        out.append(
            {
                "input_ids": encoded["input_ids"][window],
                "token_type_ids": encoded["token_type_ids"][window],
                "attention_mask": encoded["attention_mask"][window],
                "start_positions": start,
                "end_positions": end,
            }
        )
    return out


def _token_span(sequence_ids: list, offsets: list, span: tuple[int, int], shift: int) -> tuple[int, int]:
    """Token indices of the answer when the window holds all of it, else (0, 0)."""
    first, last = span[0] + shift, span[1] + shift
    tokens = [i for i, (s, o) in enumerate(zip(sequence_ids, offsets, strict=True)) if s == 1]
    if not tokens or offsets[tokens[0]][0] > first or offsets[tokens[-1]][1] < last:
        return 0, 0
    start = next(i for i in tokens if offsets[i][1] > first)
    end = next(i for i in reversed(tokens) if offsets[i][0] < last)
    return start, end


def batches(rows: list[dict], size: int, rng: random.Random) -> list[list[dict]]:
    """Shuffled batches of similar lengths, so that padding costs little."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    out = []
    for block in range(0, len(order), size * 50):
        chunk = sorted(order[block : block + size * 50], key=lambda i: len(rows[i]["input_ids"]))
        out.extend([rows[i] for i in chunk[j : j + size]] for j in range(0, len(chunk), size))
    rng.shuffle(out)
    return out


def train(
    model,
    tokenizer,
    rows: list[dict],
    args: argparse.Namespace,
    rng: random.Random,
    loss_of: Callable[[list[dict]], torch.Tensor] | None = None,
    unit: str = "windows",
) -> float:
    """Fine-tune in place with AdamW, linear warm-up and decay; returns seconds spent. `loss_of` gives a batch's
    loss; by default the model's own, under bf16 autocast where it measures faster than fp32 here (`bf16_pays`)."""

    def own_loss(batch: list[dict]) -> torch.Tensor:
        inputs = tokenizer.pad(batch, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            return model(**inputs).loss

    loss_of = loss_of or own_loss
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name not in FROZEN
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * -(-len(rows) // args.batch)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    model.train()
    started, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        for batch in batches(rows, args.batch, rng):
            loss = loss_of(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 50 == 0 or step == steps:
                elapsed = time.perf_counter() - started
                print(
                    f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.3f} "
                    f"{step * args.batch / elapsed:.1f} {unit}/s, {elapsed / 60:.1f} min, "
                    f"eta {(steps - step) * elapsed / step / 60:.1f} min",
                    flush=True,
                )
    model.eval()
    return time.perf_counter() - started


def save(model, out: Path, config: ReaderConfig, training: dict) -> None:
    """The trained tensors (all but the frozen ones) in fp16, and a card with their checksum."""
    card = {"base_model": DEFAULT_MODEL, "frozen": FROZEN, "config": asdict(config), "training": training}
    save_tuned(model, out, WEIGHTS, CARD, card)


def evaluate(reader: Reader, rows: list[Example]) -> dict:
    """Given each question's own paragraph: exact match and F1 of the span on answerable questions, and how well
    the reader's margin separates answerable from unanswerable ones."""
    margins, answerable, em, f = [], [], [], []
    for row in rows:
        reading = reader.read(row.question, [row.context])[0]
        margins.append(reading.margin)
        answerable.append(row.span is not None)
        if row.span is not None:
            predicted = row.context.passage[reading.start : reading.end]
            em.append(exact_match(predicted, row.answers))
            f.append(f1(predicted, row.answers))
    margins_array, labels = np.array(margins), np.array(answerable)
    return {
        "questions": len(rows),
        "answerable": int(labels.sum()),
        "exact_match": round(float(np.mean(em)), 3),
        "f1": round(float(np.mean(f)), 3),
        "margin_roc_auc": round(roc_auc(margins_array, labels), 3),
        "answerable_with_positive_margin": round(float((margins_array[labels] > 0).mean()), 3),
        "unanswerable_with_negative_margin": round(float((margins_array[~labels] <= 0).mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=TRAIN_DATA, help="SQuAD 2.0 training file")
    parser.add_argument("--out", type=Path, default=BUNDLED_DIR)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=6e-5)
    parser.add_argument("--negatives", type=float, default=0.35, help="share of answerable questions given a negative")
    parser.add_argument(
        "--removals",
        type=float,
        default=0.0,
        help="share of answerable questions also read without the answer's sentences",
    )
    parser.add_argument("--held-out", type=int, default=4, help="articles kept out of training for evaluation")
    parser.add_argument(
        "--attention-dropout",
        type=float,
        default=0.1,
        help="dropout on attention weights (the base model's 0.1; 0 trains ~1.4x faster in fp32, see docs/reader.md)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, help="only the first N training examples (smoke runs)")
    args = parser.parse_args()
    args.bf16 = bf16_pays()

    seed_everything(args.seed)
    rng = random.Random(args.seed)
    config = ReaderConfig()
    training_articles, held_out = split_articles(load_articles(args.data), args.held_out, args.seed)
    rows = examples(training_articles, rng, args.negatives, args.removals)[: args.limit]
    base = model_location(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(base)
    windows = features(tokenizer, rows, config)
    print(f"{len(training_articles)} training articles, {len(rows)} examples, {len(windows)} windows", flush=True)
    print(f"held out: {', '.join(a['title'] for a in held_out)}", flush=True)
    print(f"training in {'bf16 autocast' if args.bf16 else 'fp32 (bf16 is not faster on this CPU)'}", flush=True)

    model = AutoModelForQuestionAnswering.from_pretrained(base, attention_probs_dropout_prob=args.attention_dropout)
    seconds = train(model, tokenizer, windows, args, rng)
    training = {
        "data": args.data.name,
        "articles": [a["title"] for a in training_articles],
        "held_out": [a["title"] for a in held_out],
        "examples": len(rows),
        "windows": len(windows),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "negatives": args.negatives,
        "removals": args.removals,
        "attention_dropout": args.attention_dropout,
        "seed": args.seed,
        "minutes": round(seconds / 60, 1),
        "threads": torch.get_num_threads(),
        "precision": "bf16" if args.bf16 else "fp32",
    }
    save(model, args.out, config, training)
    evaluation = examples(held_out, random.Random(args.seed), negatives=0.0)[: args.limit]
    metrics = evaluate(load_bundled(args.out), evaluation)  # the shipped fp16 weights, as loaded in the product
    card = json.loads((args.out / CARD).read_text(encoding="utf-8"))
    card["held_out_metrics"] = metrics
    (args.out / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"trained in {seconds / 60:.1f} min; held-out articles, gold paragraph given: {json.dumps(metrics)}")


if __name__ == "__main__":
    main()
