"""What a build computes from text, kept between builds so that a change recomputes only for new text:
embeddings keyed by the text and the model, and sentence splits keyed by the paragraph's text.

Both live in `INDEX_DIR/embeddings/` and hold exactly what the last build used. Builds hold the index folder's
lock, so one writer at a time; files are replaced atomically, so a killed build leaves the old ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Vectors of texts already embedded with one model."""

    def __init__(self, folder: Path, model: str) -> None:
        self.path = folder / f"{hashlib.sha256(model.encode()).hexdigest()[:16]}.npz"
        self._rows: dict[bytes, np.ndarray] = {}

    def load(self) -> EmbeddingCache:
        """Read the file if there is one; a missing or unreadable file is an empty cache, never an error."""
        try:
            with np.load(self.path) as data:
                self._rows = {key.tobytes(): vector for key, vector in zip(data["keys"], data["vectors"], strict=True)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as exc:
            log.warning("embedding cache %s is unreadable (%s): every text will be embedded again", self.path, exc)
        return self

    def lookup(self, texts: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """The cached vectors by position in `texts`, and the positions still to embed."""
        found, missing = {}, []
        for i, text in enumerate(texts):
            vector = self._rows.get(_key(text))
            if vector is None:
                missing.append(i)
            else:
                found[i] = vector
        return found, missing

    def keep(self, texts: list[str], vectors: np.ndarray) -> None:
        """From now on hold exactly these texts' vectors (what the new index holds); `save` writes them."""
        self._rows = dict(zip(map(_key, texts), vectors, strict=True))

    def save(self) -> None:
        """Write the vectors kept, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial.npz")
        keys = np.frombuffer(b"".join(self._rows), dtype=np.uint8).reshape(-1, 32)
        rows = np.array(list(self._rows.values()), dtype=np.float32).reshape(len(keys), -1)
        np.savez(partial, keys=keys, vectors=rows)
        os.replace(partial, self.path)


Spans = list[tuple[int, int]]


class SentenceSplits:
    """pysbd's sentence spans per paragraph text: after embedding, splitting is the slowest step of a build."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"sentences-pysbd-{version('pysbd')}.json"  # another pysbd may split differently
        self._known: dict[str, Spans] = {}
        self._used: dict[str, Spans] = {}

    def load(self) -> SentenceSplits:
        """Read the file if there is one; a missing or unreadable file is an empty cache, never an error."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._known = {key: [(start, end) for start, end in spans] for key, spans in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            log.warning("sentence cache %s is unreadable (%s): every paragraph will be split again", self.path, exc)
        return self

    def spans(self, text: str, split: Callable[[str], Spans]) -> Spans:
        """The sentence spans of `text`, from the cache or from `split`."""
        key = _key(text).hex()
        spans = self._known.get(key)
        if spans is None:
            spans = split(text)
        self._used[key] = spans
        return spans

    def save(self) -> None:
        """Keep exactly the paragraphs split since loading, written atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(self._used), encoding="utf-8")
        os.replace(partial, self.path)


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
