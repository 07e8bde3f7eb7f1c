"""Sentence-level answerability: does this sentence, read after the one before it, answer the question?

A cross-encoder (all-MiniLM-L6-v2 fine-tuned by `training/train_evidence.py` on SQuAD 2.0 sentences and BoolQ
paragraphs) scores each candidate sentence against the question. It sees what the span reader cannot weigh: that
"The museum is closed on Mondays." settles "Does the museum open on Mondays?" and that a clause answers "Why …?".
What it does not yet tell apart (a sentence about this year's venue against a question about next year's; a
sentence naming another place against "was it held in …?") is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from bot.tuned import load_tuned

EVIDENCE_DIR = Path(__file__).parent / "evidence_model"
WEIGHTS = "evidence.safetensors"
CARD = "evidence.json"
MAX_LENGTH = 128

log = logging.getLogger(__name__)


class Evidence:
    """Scores (question, sentence) pairs: a logit, above 0 where the sentence likely answers the question."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, bf16: bool = False) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.bf16 = bf16

    @classmethod
    def load(cls, folder: Path = EVIDENCE_DIR, bf16: bool = False) -> Evidence:
        model, tokenizer, card = load_tuned(folder, AutoModelForSequenceClassification, WEIGHTS, CARD, "EVIDENCE_MODEL")
        log.info("evidence model loaded: %s fine-tuned (%s)", card["base_model"], WEIGHTS)
        return cls(model, tokenizer, bf16)

    def scores(self, question: str, sentences: Sequence[tuple[str, str]]) -> np.ndarray:
        """One logit per (sentence, the sentence before it) pair, from one batched forward pass."""
        if not sentences:
            return np.empty(0, dtype=np.float32)
        inputs = encode(self.tokenizer, [question] * len(sentences), sentences, return_tensors="pt", padding=True)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(**inputs).logits
        return logits.float().squeeze(-1).numpy()


def encode(
    tokenizer: PreTrainedTokenizerBase, questions: list[str], sentences: Sequence[tuple[str, str]], **options: object
) -> BatchEncoding:
    """The model's inputs, the same in training and in use: the question, then the sentence, then (after a
    separator, cut first when too long) the sentence before it."""
    texts = [f"{sentence} {tokenizer.sep_token} {before}" if before else sentence for sentence, before in sentences]
    return tokenizer(questions, texts, truncation="only_second", max_length=MAX_LENGTH, **options)
