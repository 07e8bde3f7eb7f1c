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
    """Vectors of texts already embedded with one model: a key per text (its sha256) and a row per key."""

    def __init__(self, folder: Path, model: str) -> None:
        self.path = folder / f"{hashlib.sha256(model.encode()).hexdigest()[:16]}.npz"
        self._keys = np.empty((0, 32), dtype=np.uint8)
        self._vectors = np.empty((0, 0), dtype=np.float32)
        self._row: dict[bytes, int] | None = None

    def load(self) -> EmbeddingCache:
        """Read the file if there is one; a missing or unreadable file is an empty cache, never an error."""
        try:
            with np.load(self.path) as data:
                self._set(data["keys"], data["vectors"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as exc:
            log.warning("embedding cache %s is unreadable (%s): every text will be embedded again", self.path, exc)
        return self

    def lookup(self, texts: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """The cached vectors by position in `texts`, and the positions still to embed."""
        found, missing, rows = {}, [], self._rows()
        for i, text in enumerate(texts):
            row = rows.get(_key(text))
            if row is None:
                missing.append(i)
            else:
                found[i] = self._vectors[row]
        return found, missing

    def keep(self, texts: list[str], vectors: np.ndarray) -> None:
        """From now on hold exactly these texts' vectors (what the new index holds, not copied); `save` writes
        them."""
        keys = np.frombuffer(b"".join(map(_key, texts)), dtype=np.uint8).reshape(-1, 32)
        self._set(keys, vectors)

    def save(self) -> None:
        """Write the vectors kept, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial.npz")
        np.savez(partial, keys=self._keys, vectors=self._vectors)
        os.replace(partial, self.path)

    def _set(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self._keys, self._vectors = keys, vectors
        self._row = None  # built on the next lookup: a build that only keeps and saves never needs it

    def _rows(self) -> dict[bytes, int]:
        if self._row is None:
            self._row = {key.tobytes(): row for row, key in enumerate(self._keys)}
        return self._row


Spans = list[tuple[int, int]]


class SentenceSplits:
    """A sentence splitter's spans per paragraph text: after embedding, splitting is the slowest step of a build."""

    def __init__(self, folder: Path, splitter: str = "pysbd") -> None:
        self.path = folder / f"sentences-{splitter}-{version(splitter)}.json"  # another version may split differently
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
