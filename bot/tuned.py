"""The project's fine-tuned models as they ship: the tensors that differ from the packaged base model, in fp16,
with a card that names the base, the frozen tensors and the weights' checksum. Shared by the reader and the
evidence model, and by the training scripts that write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from index.embedder import ModelError, model_location
from index.store import file_sha256


def load_tuned(
    folder: Path, model_class: Any, weights: str, card_name: str, setting: str
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """The base model with the trained tensors of `folder` laid over it, after checking their checksum; with its
    tokenizer and card. `setting` names the variable that turns the model off, for the error messages."""
    card = json.loads((folder / card_name).read_text(encoding="utf-8"))
    path = folder / weights
    if not path.exists() or file_sha256(path) != card["sha256"]:
        raise ModelError(f"the weights in {path} are missing or corrupt: reinstall, or set {setting}=none")
    base = model_location(card["base_model"])
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the base has no task head yet: its "newly initialized" note is noise
    try:
        model = model_class.from_pretrained(base, **card.get("model_options", {}))
    finally:
        transformers_logging.set_verbosity(verbosity)
    trained = {k: v.float() for k, v in load_file(path).items()}
    missing, unexpected = model.load_state_dict(trained, strict=False)
    if unexpected or any(k not in card["frozen"] for k in missing):
        raise ModelError(
            f"the weights in {path} do not fit {card['base_model']}: retrain, reinstall or set {setting}=none"
        )
    return model.eval(), AutoTokenizer.from_pretrained(base), card


def save_tuned(model: PreTrainedModel, folder: Path, weights: str, card_name: str, card: dict) -> None:
    """The trained tensors (all but `card["frozen"]`) in fp16, and the card with their checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    frozen = set(card["frozen"])
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if k not in frozen}
    save_file(state, folder / weights)
    card = card | {"sha256": file_sha256(folder / weights)}
    (folder / card_name).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
