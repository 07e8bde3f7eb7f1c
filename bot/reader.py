"""The learned reader: a question and a few passages in, per passage the best answer span and how much better
it scores than "no answer here".

An extractive question-answering model in the SQuAD 2.0 style (start/end logits, with the [CLS] token standing
for "no answer"). Each passage is read after the sentence that precedes it in its document, so that "it" or
"she" can be resolved, but the answer is only ever taken from the passage itself. The bundled reader is
all-MiniLM-L6-v2 fine-tuned by `training/train_reader.py`; it ships as the tensors that differ from that base
model, checked against a recorded checksum, and any Hugging Face question-answering model can replace it. Where
bfloat16 autocast measures faster than fp32 on this CPU (with AMX it is about twice as fast, for the same
answers) the reader runs under it (READER_PRECISION).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from bot.calibration import BUNDLED, NONE
from bot.calibration import BUNDLED_READER_DIR as BUNDLED_DIR
from bot.tuned import load_tuned
from index.embedder import ModelError

# Inputs are padded to a multiple of this many tokens: oneDNN keeps kernels (and, in bf16, weight copies) per input
# shape, so few shapes keep memory flat (300 questions: 710 MB peak, 929 MB unpadded), at no cost in speed.
PAD_TO = 32
# bf16 is chosen only when a matrix product of the reader's shape runs at least this much faster under it.
BF16_MIN_SPEEDUP = 1.25
WEIGHTS = "reader.safetensors"
CARD = "reader.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What the reader sees of one passage: the text before it (to resolve references) and the passage."""

    before: str
    passage: str


@dataclass(frozen=True)
class Reading:
    """The best answer span in one passage (character offsets into the passage) and the scores behind it."""

    start: int
    end: int
    span_score: float
    null_score: float

    @property
    def margin(self) -> float:
        """How much the span beats "no answer": the reader's evidence that this passage answers."""
        return self.span_score - self.null_score


@dataclass(frozen=True)
class ReaderConfig:
    """How questions and passages are cut into model inputs; recorded with the trained weights."""

    max_length: int = 256
    stride: int = 96
    max_answer_tokens: int = 30


class Reader:
    """Reads passages with an extractive QA model; `read` is batched over passages and windows, in bfloat16 when
    `bf16` (the weights stay fp32; autocast keeps softmax and layer norms in fp32)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: ReaderConfig, bf16: bool = False
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.bf16 = bf16

    @classmethod
    def load(cls, name: str = BUNDLED, precision: str = "auto") -> Reader:
        """The bundled reader, a folder written by `training/train_reader.py --out`, or any Hugging Face
        question-answering model name or local folder, at `precision` (auto: bf16 where it measures faster)."""
        folder = BUNDLED_DIR if name == BUNDLED else Path(name)
        reader = load_bundled(folder) if (folder / CARD).is_file() else cls._load_named(name)
        reader.bf16 = precision == "bf16" or (precision == "auto" and bf16_pays())
        log.info("reader runs in %s", "bf16" if reader.bf16 else "fp32")
        return reader

    @classmethod
    def _load_named(cls, name: str) -> Reader:
        try:
            model = AutoModelForQuestionAnswering.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"reader model {name!r} could not be loaded offline ({exc}); set READER_MODEL to a local "
                f"question-answering model folder, to {BUNDLED!r} (ships with the install) or to {NONE!r}"
            ) from exc
        return cls(model, tokenizer, ReaderConfig())

    def read(self, question: str, contexts: Sequence[Context]) -> list[Reading]:
        """One Reading per context, from a single batched forward pass over all their windows."""
        if not contexts:
            return []
        encoded = windows(
            self.tokenizer,
            [question] * len(contexts),
            contexts,
            self.config,
            padding=True,
            pad_to_multiple_of=PAD_TO,
            return_tensors="pt",
        )
        owners = encoded.pop("overflow_to_sample_mapping").tolist()
        offsets = encoded.pop("offset_mapping").numpy()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            output = self.model(**encoded)
        starts, ends = output.start_logits.float().numpy(), output.end_logits.float().numpy()
        best: list[Reading | None] = [None] * len(contexts)
        for window, owner in enumerate(owners):
            answerable = _passage_tokens(encoded.sequence_ids(window), offsets[window], passage_offset(contexts[owner]))
            reading = self._best_span(starts[window], ends[window], answerable, offsets[window], contexts[owner])
            best[owner] = _merge(best[owner], reading)
        return [r for r in best if r is not None]

    def _best_span(
        self, starts: np.ndarray, ends: np.ndarray, answerable: np.ndarray, offsets: np.ndarray, context: Context
    ) -> Reading:
        """The highest-scoring span of at most `max_answer_tokens` tokens inside the passage part of one window."""
        null = float(starts[0] + ends[0])
        if not answerable.any():
            return Reading(0, 0, -np.inf, null)
        scores = starts[:, None] + ends[None, :]
        length = np.arange(len(starts))
        allowed = (length[None, :] >= length[:, None]) & (
            length[None, :] - length[:, None] < self.config.max_answer_tokens
        )
        scores = np.where(allowed & answerable[:, None] & answerable[None, :], scores, -np.inf)
        first, last = np.unravel_index(int(np.argmax(scores)), scores.shape)
        shift = passage_offset(context)
        return Reading(int(offsets[first][0]) - shift, int(offsets[last][1]) - shift, float(scores[first, last]), null)


def windows(
    tokenizer: PreTrainedTokenizerBase,
    questions: list[str],
    contexts: Sequence[Context],
    config: ReaderConfig,
    **options: object,
) -> BatchEncoding:
    """The model's inputs, the same in training and in use: each question with its context, the context cut into
    overlapping windows, with character offsets for every token."""
    return tokenizer(
        questions,
        [joined(c) for c in contexts],
        truncation="only_second",
        max_length=config.max_length,
        stride=config.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        **options,
    )


def joined(context: Context) -> str:
    """The text the reader is given: the preceding text, then the passage."""
    return f"{context.before} {context.passage}" if context.before else context.passage


def passage_offset(context: Context) -> int:
    """Where the passage starts in `joined(context)`."""
    return len(context.before) + 1 if context.before else 0


def _passage_tokens(sequence_ids: list[int | None], offsets: np.ndarray, start: int) -> np.ndarray:
    """Which tokens of a window may be part of an answer: context tokens inside the passage."""
    return np.array([s == 1 and o[0] >= start and o[1] > o[0] for s, o in zip(sequence_ids, offsets, strict=True)])


def _merge(current: Reading | None, new: Reading) -> Reading:
    """Combine the windows of one passage: the best span anywhere, against the lowest no-answer score."""
    if current is None:
        return new
    span = new if new.span_score > current.span_score else current
    return Reading(span.start, span.end, span.span_score, min(current.null_score, new.null_score))


def load_bundled(folder: Path) -> Reader:
    """The base model with the trained tensors of `folder` laid over it, after checking their checksum."""
    model, tokenizer, card = load_tuned(folder, AutoModelForQuestionAnswering, WEIGHTS, CARD, "READER_MODEL")
    log.info("reader loaded: %s fine-tuned (%s)", card["base_model"], WEIGHTS)
    return Reader(model, tokenizer, ReaderConfig(**card["config"]))


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX): elsewhere bf16 is emulated, and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


@functools.cache
def bf16_pays() -> bool:
    """Whether bfloat16 autocast clearly speeds up the reader's matrix products on this CPU, measured once per
    process. The instruction flags alone mislead: with AVX512-BF16 but no AMX, a reader pass can be slower in bf16.
    """
    if not native_bf16():
        return False
    fp32, bf16 = _product_seconds(bf16=False), _product_seconds(bf16=True)
    log.info("a feed-forward product takes %.2f ms in fp32, %.2f ms in bf16", fp32 * 1e3, bf16 * 1e3)
    return clearly_faster(fp32, bf16)


def clearly_faster(fp32_seconds: float, bf16_seconds: float) -> bool:
    """The rule `bf16_pays` applies to its timings: bf16 only for a speed-up of at least BF16_MIN_SPEEDUP, since
    bf16 also costs a little accuracy."""
    return fp32_seconds >= BF16_MIN_SPEEDUP * bf16_seconds


def _product_seconds(bf16: bool, repeats: int = 20) -> float:
    """Best-of time of a feed-forward up-projection as the reader computes it (three passages of 128 tokens)."""
    tokens, weight, bias = torch.full((384, 384), 0.5), torch.full((1536, 384), 0.01), torch.zeros(1536)
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(repeats):
            started = time.perf_counter()
            torch.nn.functional.linear(tokens, weight, bias)
            times.append(time.perf_counter() - started)
    return min(times)
