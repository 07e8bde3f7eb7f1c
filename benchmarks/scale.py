"""Scale: the exact and the approximate FAISS index, and BM25, from 10k to 1M entries, built by the engine's code.

Vectors have the structure of real ones: each mixes two all-MiniLM-L6-v2 embeddings of the SQuAD file's passages
and sentences (the second weighing less than half) with a little Gaussian noise, re-normalised. Queries are the
file's questions, embedded by the same model. (Random unit vectors would make approximate indexes look far worse
than they are on text.) A BM25 passage is four of the file's sentences drawn at random.

For each size and index: build time (train + add + tune), size on disk, RSS growth of this process holding the index,
single-query latency p50/p95 at k=10 and at the engine's k=100, and recall@10 against the exact top 10. The
approximate index is the one INDEX_TYPE builds above APPROX_INDEX_THRESHOLD, tuned with NPROBE and EF_SEARCH.

Usage: python benchmarks/scale.py [--sizes N ...] [--queries N] [--out-dir DIR] [--data SQUAD_JSON]
(The same sizes through the engine, end to end: benchmarks/engine_scale.py.)
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import bm25s
import faiss
import matplotlib
import numpy as np
import psutil

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.settings import Settings, load_settings
from index import lexical, vectors
from index.documents import load_corpus
from index.embedder import Embedder
from index.passages import Chunking, chunk
from training.squad import BENCHMARK_DATA, questions, write_corpus

RESULTS = ROOT / "benchmarks" / "results"
SIZES = (10_000, 100_000, 1_000_000)
NOISE = 0.02  # per dimension: questions then meet their top passage at cosine 0.64, as on the real passages
SENTENCES_PER_PASSAGE = 4
MB = 2**20
LIBC = ctypes.CDLL(None)

Index = TypeVar("Index")
Query = TypeVar("Query")


@dataclass(frozen=True)
class Inputs:
    """What every corpus is generated from, and what every index is asked."""

    real: np.ndarray
    sentence_tokens: list[list[str]]
    query_vectors: list[np.ndarray]
    query_tokens: list[list[str]]


def load_inputs(path: Path, count: int) -> Inputs:
    """Embeddings of the file's passages and sentences as the engine chunks them, and its first `count` questions."""
    articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(articles, Path(tmp) / "corpus")
        passages, sentences = chunk(load_corpus(Path(tmp) / "corpus"), Chunking())
    texts = list(dict.fromkeys([p.text for p in passages] + [s.text for s in sentences]))
    asked = [row["question"] for row in questions(articles)[:count]]
    embedder = Embedder().load()
    return Inputs(
        real=embedder.encode(texts),
        sentence_tokens=[lexical.tokenize(s.text) for s in sentences],
        query_vectors=list(embedder.encode(asked)[:, None]),
        query_tokens=[lexical.tokenize(q) for q in asked],
    )


def mixtures(real: np.ndarray, n: int, rng: np.random.Generator, batch: int = 100_000) -> np.ndarray:
    """`n` unit vectors, each (1-a)·x + a·y + noise for real vectors x, y and a uniform in [0, ½)."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        first, second = real[rng.integers(len(real), size=m)], real[rng.integers(len(real), size=m)]
        weight = rng.uniform(0, 0.5, size=(m, 1)).astype(np.float32)
        noise = rng.standard_normal((m, real.shape[1]), dtype=np.float32) * NOISE
        out[start : start + m] = (1 - weight) * first + weight * second + noise
        faiss.normalize_L2(out[start : start + m])
    return out


def sampled_passages(sentence_tokens: list[list[str]], n: int, rng: np.random.Generator) -> list[list[str]]:
    """`n` BM25 passages of SENTENCES_PER_PASSAGE random sentences each, as token lists."""
    picks = rng.integers(len(sentence_tokens), size=(n, SENTENCES_PER_PASSAGE))
    return [[token for s in row for token in sentence_tokens[s]] for row in picks.tolist()]


def measure_size(n: int, inputs: Inputs, settings: Settings, rng: np.random.Generator, bm25: bool) -> list[dict]:
    """Rows for the exact and the approximate index over `n` vectors and (optionally) BM25 over `n` passages."""
    engine = vectors.factory_string(settings.index_type, n, settings.approx_index_threshold)
    approximate = vectors.factory_string(settings.index_type, n, approx_threshold=0)
    corpus = mixtures(inputs.real, n, rng)
    build = partial(_build_faiss, corpus, nprobe=settings.nprobe, ef_search=settings.ef_search)
    exact, truth = measure(vectors.EXACT, partial(build, vectors.EXACT), _save_faiss, _top_faiss, inputs.query_vectors)
    approx, found = measure(approximate, partial(build, approximate), _save_faiss, _top_faiss, inputs.query_vectors)
    del corpus, build
    rows = [exact | {"recall_at_10": 1.0}, approx | {"recall_at_10": recall(found, truth)}]
    rows = [{"n": n, **row, "engine": row["index"] == engine} for row in rows]
    if bm25:
        docs = sampled_passages(inputs.sentence_tokens, n, rng)
        row, _ = measure("BM25", partial(lexical.build_bm25, docs), lexical.save_bm25, _top_bm25, inputs.query_tokens)
        rows.append({"n": n, **row, "recall_at_10": None, "engine": True})
    return rows


def measure(
    name: str,
    build: Callable[[], Index],
    save: Callable[[Index, Path], None],
    top: Callable[[Index, Query, int], np.ndarray],
    queries: Sequence[Query],
) -> tuple[dict, list[np.ndarray]]:
    """Build time, RSS growth while holding the index, size on disk, single-query latency at k=10 and k=100;
    and the ids found at k=10."""
    before = _rss()
    started = time.perf_counter()
    index = build()
    row = {"index": name, "build_s": time.perf_counter() - started, "rss_mb": (_rss() - before) / MB}
    with tempfile.TemporaryDirectory() as tmp:
        save(index, Path(tmp))
        row["disk_mb"] = sum(f.stat().st_size for f in Path(tmp).iterdir()) / MB
    found = {}
    for k in (10, 100):
        times, found[k] = latency(partial(top, index), queries, k)
        row[f"k{k}_p50_ms"], row[f"k{k}_p95_ms"] = np.percentile(times, [50, 95]).tolist()
    return row, found[10]


def latency(top: Callable[[Query, int], np.ndarray], queries: Sequence[Query], k: int) -> tuple[list, list]:
    """Milliseconds of `top(query, k)` for each query, one at a time after a warm-up, and what each found."""
    top(queries[0], k)
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(top(query, k))
        times.append((time.perf_counter() - started) * 1000)
    return times, found


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """Mean share of each query's true top ids that were found."""
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def run_scale(
    out_dir: Path,
    sizes: Sequence[int] = SIZES,
    queries: int = 300,
    data: Path = BENCHMARK_DATA,
    bm25: bool = True,
) -> dict:
    """Measure every size, print the table, write `scale.json` and `scale.png` into `out_dir`; the results."""
    started = time.perf_counter()
    settings = load_settings(_env_file=None)
    inputs = load_inputs(data, queries)
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        print(f"size {n:,} …", flush=True)
        rows += measure_size(n, inputs, settings, rng, bm25)
    results = {
        "settings": {
            key: getattr(settings, key) for key in ("index_type", "approx_index_threshold", "nprobe", "ef_search")
        },
        "data": {
            "file": data.name,
            "real_vectors": len(inputs.real),
            "dimension": inputs.real.shape[1],
            "noise": NOISE,
        },
        "queries": len(inputs.query_vectors),
        "faiss_threads": faiss.omp_get_max_threads(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(rows, out_dir / "scale.png")
    print(table(rows))
    print(f"written {out_dir / 'scale.json'} and {out_dir / 'scale.png'} in {results['seconds']} s")
    return results


def table(rows: list[dict]) -> str:
    """The rows as a markdown table; ✓ marks what the engine uses at that size with the current settings."""
    lines = [
        "| size | index | used | build s | disk MB | RSS MB | ms p50 / p95, k=10 | k=100 | recall@10 |",
        "|---:|---|:-:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        recall_10 = "—" if r["recall_at_10"] is None else f"{r['recall_at_10']:.3f}"
        lines.append(
            f"| {r['n']:,} | `{r['index']}` | {'✓' if r['engine'] else ''} | {_num(r['build_s'])} "
            f"| {_num(r['disk_mb'])} | {_num(r['rss_mb'])} | {_num(r['k10_p50_ms'])} / {_num(r['k10_p95_ms'])} "
            f"| {_num(r['k100_p50_ms'])} / {_num(r['k100_p95_ms'])} | {recall_10} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Latency at k=100 (legend: the approximate index's recall), and memory and disk size, against size (log-log)."""
    fig, (speed, size) = plt.subplots(1, 2, figsize=(11, 4.2))
    for color, kind in enumerate(("exact", "approximate", "BM25")):
        own = [r for r in rows if _kind(r) == kind]
        n, style = [r["n"] for r in own], {"color": f"C{color}", "marker": "o"}
        speed.plot(n, [r["k100_p50_ms"] for r in own], **style, label=_legend(kind, own))
        size.plot(n, [r["rss_mb"] for r in own], **style, label=f"{kind}: RSS growth")
        size.plot(n, [r["disk_mb"] for r in own], **style, linestyle=":", label=f"{kind}: on disk")
    for axes, title, unit in ((speed, "single-query latency p50, k=100", "ms"), (size, "index size", "MB")):
        axes.set(xscale="log", yscale="log", xlabel="size (vectors; passages for BM25)", ylabel=unit, title=title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _build_faiss(corpus: np.ndarray, factory: str, nprobe: int, ef_search: int) -> faiss.Index:
    return vectors.tune(vectors.build_index(corpus, factory), nprobe, ef_search)


def _save_faiss(index: faiss.Index, folder: Path) -> None:
    faiss.write_index(index, str(folder / "vectors.faiss"))


def _top_faiss(index: faiss.Index, query: np.ndarray, k: int) -> np.ndarray:
    return index.search(query, k)[1][0]


def _top_bm25(retriever: bm25s.BM25, tokens: list[str], k: int) -> np.ndarray:
    matched, scores = lexical.bm25_matches(retriever, tokens)
    return matched[np.argpartition(-scores, k)[:k]] if len(scores) > k else matched


def _legend(kind: str, rows: list[dict]) -> str:
    """The kind, and for the approximate index which index and what recall at each size."""
    if kind != "approximate":
        return kind
    names = ", ".join(r["index"].removesuffix(",Flat") for r in rows)
    return f"approximate: {names}\nrecall@10 " + ", ".join(f"{r['recall_at_10']:.3f}" for r in rows)


def _kind(row: dict) -> str:
    return {"BM25": "BM25", vectors.EXACT: "exact"}.get(row["index"], "approximate")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _rss() -> int:
    """Resident bytes, once freed heap pages are handed back (glibc), so that what an index allocates shows."""
    gc.collect()
    LIBC.malloc_trim(0)
    return psutil.Process().memory_info().rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=SIZES, help="corpus sizes: vectors, and passages for BM25"
    )
    parser.add_argument("--queries", type=int, default=300, help="questions asked of each index")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where scale.json and scale.png go")
    parser.add_argument("--data", type=Path, default=BENCHMARK_DATA, help="SQuAD-format file: texts and questions")
    parser.add_argument("--no-bm25", dest="bm25", action="store_false", help="leave BM25 out")
    args = parser.parse_args()
    run_scale(args.out_dir, args.sizes, args.queries, args.data, args.bm25)


if __name__ == "__main__":
    main()
