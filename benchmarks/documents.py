"""Changing the corpus one document at a time, as ratios to the floor measured in the same run.

A corpus of SQuAD training articles (about 2,000 passages) is built once. Then, through the engine:
- adding one more article (`IndexManager.add_file`) against embedding that article's passages and sentences alone
  (one `model.encode` call): the ratio is what the rest of an incremental update costs;
- removing it again;
- a forced full rebuild of the unchanged corpus, which embeds nothing thanks to the embedding cache.

Usage: python benchmarks/documents.py [--data FILE] [--articles N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer import Answerer
from bot.calibration import Calibrator
from bot.engine import Engine
from bot.settings import load_settings
from index.documents import parse_document
from index.embedder import Embedder
from index.passages import Chunking, chunk
from training.squad import TRAIN_DATA, load_articles, write_corpus

RESULTS = ROOT / "benchmarks" / "results"
NO_READER = Answerer(None, Calibrator((), (), (), (), 0.0, 0.0), 0.0)  # answering is not measured here


def article_markdown(article: dict) -> str:
    body = "\n\n".join(" ".join(p["context"].split()) for p in article["paragraphs"])
    return f"---\ntitle: {json.dumps(article['title'].replace('_', ' '))}\n---\n\n{body}\n"


def embedding_floor(embedder: Embedder, markdown: str) -> tuple[float, int]:
    """Seconds to embed the article's distinct passage and sentence texts in one call, and how many there are."""
    document = parse_document(markdown, Path("new.md"), "new.md")
    passages, sentences = chunk([document], Chunking())
    texts = list(dict.fromkeys([p.text for p in passages] + [s.text for s in sentences]))
    started = time.perf_counter()
    embedder.encode(texts)
    return time.perf_counter() - started, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=TRAIN_DATA)
    parser.add_argument("--articles", type=int, default=20, help="articles in the starting corpus")
    parser.add_argument("--out", type=Path, default=RESULTS / "documents.json")
    args = parser.parse_args()

    articles = load_articles(args.data)
    corpus, new = articles[: args.articles], articles[args.articles]
    embedder = Embedder().load()
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(corpus, Path(tmp) / "corpus")
        settings = load_settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", _env_file=None)
        started = time.perf_counter()
        engine = Engine(settings, embedder, NO_READER)
        first_build = time.perf_counter() - started
        passages = len(engine.store.passages)
        markdown = article_markdown(new)
        floor, texts = embedding_floor(embedder, markdown)
        added = engine.library.base.add_file("new.md", markdown.encode())
        removed = engine.library.base.remove(added.document.id)
        unchanged = engine.library.base.rebuild(force=True)
    results = {
        "corpus": {"documents": len(corpus), "passages": passages, "first_build_s": round(first_build, 2)},
        "add": {
            "seconds": round(added.seconds, 2),
            "embed_alone_s": round(floor, 2),
            "ratio": round(added.seconds / floor, 2),
            "texts": texts,
            "passages": added.document.passages,
        },
        "remove": {"seconds": round(removed.seconds, 2)},
        "unchanged_rebuild": {"seconds": round(unchanged.seconds, 2), "embedded": unchanged.embedded},
    }
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
