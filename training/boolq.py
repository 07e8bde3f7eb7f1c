"""BoolQ (yes/no questions as people type them, each with the Wikipedia paragraph that settles it), split three
ways by paragraph: training for the evidence model, calibration for the answer threshold, test for the benchmark.
A paragraph shared by several questions stays in one part, so nothing read in training is tested on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

BOOLQ_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "boolq" / "validation.jsonl"
PARTS = {"train": range(0, 6), "calibration": range(6, 8), "test": range(8, 10)}


def load_part(part: str, path: Path = BOOLQ_DATA) -> list[dict]:
    """The questions of one part ("train", "calibration" or "test"), in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if bucket(row["passage"]) in PARTS[part]]


def bucket(passage: str) -> int:
    """0–9, fixed by the paragraph's text."""
    return int(hashlib.sha256(passage.encode("utf-8")).hexdigest(), 16) % 10


def write_corpus(rows: list[dict], folder: Path, per_document: int = 20) -> list[tuple[str, int]]:
    """The rows' paragraphs as a corpus (`per_document` paragraphs to a document, each paragraph once), and for each
    row the (document, paragraph) its own paragraph became."""
    folder.mkdir(parents=True)
    passages = list(dict.fromkeys(" ".join(row["passage"].split()) for row in rows))
    for start in range(0, len(passages), per_document):
        body = "\n\n".join(passages[start : start + per_document])
        title = f"BoolQ paragraphs {start + 1}–{start + per_document}"
        (folder / f"{start // per_document:03d}.txt").write_text(f"---\ntitle: {title}\n---\n{body}\n", "utf-8")
    place = {p: (f"{i // per_document:03d}.txt", i % per_document + 1) for i, p in enumerate(passages)}
    return [place[" ".join(row["passage"].split())] for row in rows]
