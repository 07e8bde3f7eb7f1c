"""Changing the corpus folder one document at a time, in ways that can be undone exactly if the rebuild fails.

The corpus folder stays the single source of truth: an added document is a normalised `.md` file in it, so a
full rebuild reproduces the same index.
"""

from __future__ import annotations

import os
from pathlib import Path

from index.documents import SUFFIXES, CorpusError, DocumentError


def write_new(corpus_dir: Path, name: str, text: str) -> Path:
    """Write `text` as a new file `name` in the corpus (`name-2`, `name-3`… when taken), atomically, so that a
    concurrent full rebuild never reads half a file."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, Path(name).suffix
    path, n = corpus_dir / name, 1
    while path.exists():
        n += 1
        path = corpus_dir / f"{stem}-{n}{suffix}"
    partial = corpus_dir / f".{path.name}.partial"  # hidden: never read as a document
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def document_file(corpus_dir: Path, document_id: str) -> Path:
    """The file of the corpus document `document_id` (its path relative to the corpus folder)."""
    path = (corpus_dir / document_id).resolve()
    if not path.is_relative_to(corpus_dir.resolve()) or path.suffix.lower() not in SUFFIXES or not path.is_file():
        raise DocumentError(f"there is no document {document_id!r} in the corpus: see the list of sources")
    return path


def take_out(path: Path) -> bytes:
    """Remove a document's file and return its bytes, to put it back with `put_back` if the change fails."""
    try:
        data = path.read_bytes()
        path.unlink()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be removed ({exc.strerror})") from exc
    return data


def put_back(path: Path, data: bytes) -> None:
    path.write_bytes(data)
