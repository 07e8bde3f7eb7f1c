"""Scale end to end: corpora of 10k, 100k and 1M passages built, loaded and asked through the engine's own path.

Corpus: documents of 100 paragraphs; a paragraph is 2-6 sentences (one passage), each a sentence of the SQuAD file
with two of its words swapped for words of the file's vocabulary, so that every text is distinct and BM25 sees the
file's word statistics. Sentences are split with SENTENCE_SPLITTER=blingfire, the bulk splitter; pysbd's rate is
measured on a sample and reported beside it.

Vectors: embedding millions of texts with all-MiniLM-L6-v2 takes days on this CPU, so builds here use
`StandInEmbedder` (this benchmark only, never the product): each text gets a mixture of two real embeddings of the
file's passages and sentences plus noise (`scale.mixtures`); questions are embedded by the real model.

Each size runs in three processes, so that none inflates another's memory:
- build: `index.build.build` with the engine's settings; build time without the stand-in's vector making, size on
  disk, peak memory, and the exact top 10 of every question over the vectors built;
- serve: process start → `Engine` ready, then `Engine.ask` (embedding, BM25, FAISS, re-scoring, reader, answer)
  for every question: p50 / p95 end to end and of retrieval alone, RSS while serving, and recall@10 of the
  index against the exact top 10.

Usage: python benchmarks/engine_scale.py [--sizes N ...] [--queries N] [--out-dir DIR] [--data FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import RESULTS, SIZES, load_inputs, mixtures
from bot.calibration import NONE
from bot.engine import Engine, configured_answerer
from bot.knowledge import index_config
from bot.settings import Settings, load_settings
from index.build import build
from index.embedder import Embedder
from index.passages import SPLITTERS
from index.store import Store
from training.squad import BENCHMARK_DATA, load_articles, questions

PARAGRAPHS_PER_DOCUMENT = 100
SWAPPED_WORDS = 2
MB = 2**20


class StandInEmbedder(Embedder):
    """Benchmark only: bulk texts get realistic vectors without the model; questions go through the real model."""

    def __init__(self, real: np.ndarray, seed: int = 0) -> None:
        super().__init__()
        self.real = real
        self.rng = np.random.default_rng(seed)
        self.seconds = 0.0
        self.texts: list[str] = []
        self.produced = np.empty((0, real.shape[1]), dtype=np.float32)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        self.texts, self.produced = texts, mixtures(self.real, len(texts), self.rng)
        self.seconds += time.perf_counter() - started
        return self.produced

    def encode_query(self, text: str) -> np.ndarray:
        return super().encode([text])


def settings_for(work: Path, **overrides: str) -> Settings:
    """The engine's defaults, over the generated corpus, with the bulk sentence splitter."""
    return load_settings(
        _env_file=None,
        corpus_dir=work / "corpus",
        index_dir=work / "index",
        sentence_splitter="blingfire",
        log_questions=False,
        **overrides,
    )


def write_corpus(folder: Path, passages: int, data: Path) -> int:
    """`passages` one-passage paragraphs, PARAGRAPHS_PER_DOCUMENT to a file; the number of sentences written."""
    folder.mkdir(parents=True)
    paragraphs = generated_paragraphs(passages, data)
    written = 0
    for number in range(-(-passages // PARAGRAPHS_PER_DOCUMENT)):
        own = list(islice(paragraphs, PARAGRAPHS_PER_DOCUMENT))
        written += sum(len(p) for p in own)
        body = "\n\n".join(" ".join(p) for p in own)
        (folder / f"{number:06d}.md").write_text(f"---\ntitle: Document {number}\n---\n{body}\n", encoding="utf-8")
    return written


def generated_paragraphs(count: int, data: Path, seed: int = 0) -> Iterator[list[str]]:
    """`count` paragraphs of 2-6 distinct sentences each, as lists of sentences."""
    articles = load_articles(data)
    pool = [s for a in articles for p in a["paragraphs"] for s in _sentences(p["context"])]
    words = sorted({w for s in pool for w in s.split() if w.isalpha() and len(w) > 3})
    rng = np.random.default_rng(seed)
    for _ in range(count):
        picks = rng.integers(len(pool), size=int(rng.integers(2, 7)))
        yield [_variant(pool[i], words, rng) for i in picks]


def _sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in SPLITTERS["blingfire"](" ".join(text.split())) if b - a > 40]


def _variant(sentence: str, words: list[str], rng: np.random.Generator) -> str:
    """The sentence with SWAPPED_WORDS of its words replaced by random vocabulary words."""
    tokens = sentence.split()
    for at in rng.integers(len(tokens) - 1, size=SWAPPED_WORDS):  # not the last word: it carries the full stop
        tokens[at] = words[int(rng.integers(len(words)))]
    return " ".join(tokens)


def real_vectors(data: Path) -> np.ndarray:
    """All-MiniLM-L6-v2 vectors of the SQuAD file's passages and sentences: what stand-in vectors mix."""
    return load_inputs(data, 1).real


def asked(count: int, data: Path) -> list[str]:
    return [row["question"] for row in questions(load_articles(data))[:count]]


def run_build(work: Path, queries: int, data: Path) -> dict:
    """Build the index of `work/corpus` with the stand-in; write the exact top 10 of each question."""

    stand_in = StandInEmbedder(real_vectors(data)).load()
    settings = settings_for(work)
    report = build(index_config(settings), stand_in)
    build_dir = (work / "index" / "current").resolve()
    rows = index_rows(stand_in, Store.load(build_dir, stand_in.name))
    questions_vectors = Embedder().load().encode(asked(queries, data))
    np.save(work / "truth.npy", exact_top(stand_in.produced, rows, questions_vectors, 10))
    build_dir = (work / "index" / "current").resolve()
    return {
        "passages": report.passages,
        "sentences": report.sentences,
        "vectors": len(rows),
        "build_s": round(report.seconds - stand_in.seconds, 1),
        "stand_in_vectors_s": round(stand_in.seconds, 1),
        "disk_mb": round(_folder_bytes(build_dir) / MB, 1),
        "cache_mb": round(_folder_bytes(work / "index" / "embeddings") / MB, 1),
        "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "index_factory": json.loads((build_dir / "manifest.json").read_text())["index_factory"],
    }


def index_rows(stand_in: StandInEmbedder, store: Store) -> np.ndarray:
    """For each row of the store's vector index, the row of the stand-in's output it holds (a text that is both a
    passage and a sentence was embedded once)."""
    row = {text: i for i, text in enumerate(stand_in.texts)}
    columns = (store.passages.texts, store.sentences.texts)
    return np.fromiter((row[texts[i]] for texts in columns for i in range(len(texts))), dtype=np.int64)


def exact_top(vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """The index rows of each query's k highest inner products over `vectors[rows]`, block by block."""
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    for start in range(0, len(rows), block):
        scores = queries @ vectors[rows[start : start + block]].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return best_ids


def run_serve(work: Path, queries: int, data: Path, started: float) -> dict:
    """Start the engine as the bot does and ask every question; latency, memory and recall. Then the same
    questions once more with READER_MODEL=none, to separate the reader's cost from what grows with the corpus."""
    engine = Engine(settings_for(work))
    load_s = time.time() - started
    questions_asked = asked(queries, data)
    total_ms, search_ms = _latencies(engine, questions_asked)
    memory = _memory_mb()
    truth = np.load(work / "truth.npy")
    found = [engine.store.vectors.search(engine.embedder.encode_query(q), 10)[1][0] for q in questions_asked]
    recall = np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth, strict=True)])
    engine.answerer = configured_answerer(settings_for(work, reader_model=NONE))
    without_reader_ms, _ = _latencies(engine, questions_asked)
    return {
        "load_s": round(load_s, 2),
        "rss_mb": memory["VmRSS"],
        "rss_anon_mb": memory["RssAnon"],
        "rss_file_mb": memory["RssFile"],
        **_percentiles("ask", total_ms),
        **_percentiles("retrieval", search_ms),
        **_percentiles("ask_without_reader", without_reader_ms),
        "recall_at_10": round(float(recall), 4),
        "questions": len(questions_asked),
    }


def _latencies(engine: Engine, questions_asked: list[str]) -> tuple[list[float], list[float]]:
    """Milliseconds of each `Engine.ask`, after one warm-up, and of its retrieval step."""
    engine.ask(questions_asked[0])
    total_ms, search_ms = [], []
    for question in questions_asked:
        begun = time.perf_counter()
        answer = engine.ask(question)
        total_ms.append((time.perf_counter() - begun) * 1000)
        search_ms.append(answer.timings_ms["search"])
    return total_ms, search_ms


def _percentiles(name: str, values: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(values, [50, 95]).tolist()
    return {f"{name}_p50_ms": round(p50, 2), f"{name}_p95_ms": round(p95, 2)}


def pysbd_rate(data: Path, sample: int = 2000) -> float:
    """Sentences per second pysbd splits, on `sample` paragraphs of the kind the corpus holds."""
    texts = [" ".join(p) for p in generated_paragraphs(sample, data, seed=1)]
    started = time.perf_counter()
    count = sum(len(SPLITTERS["pysbd"](t)) for t in texts)
    return count / (time.perf_counter() - started)


def measure(passages: int, queries: int, data: Path, work_root: Path) -> dict:
    """One size: generate, build (child process), serve (child process); the row."""
    work = Path(tempfile.mkdtemp(prefix=f"scale-{passages}-", dir=work_root))
    try:
        started = time.perf_counter()
        sentences = write_corpus(work / "corpus", passages, data)
        row: dict = {"corpus_s": round(time.perf_counter() - started, 1), "written_sentences": sentences}
        row |= _child("build", work, queries, data)
        row |= _child("serve", work, queries, data)
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(sizes: list[int], queries: int, out_dir: Path, data: Path = BENCHMARK_DATA) -> list[dict]:
    """Measure every size; print the table; write `scale-engine.json` (one object per size) and the plot."""
    rate = pysbd_rate(data)
    rows = []
    for passages in sizes:
        print(f"end to end, {passages:,} passages …", flush=True)
        row = {"requested": passages} | measure(passages, queries, data, Path(tempfile.gettempdir()))
        row["pysbd_split_s"] = round(row["sentences"] / rate, 1)  # what pysbd would add to the build
        rows.append(row)
        print(table(rows[-1:]), flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale-engine.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, out_dir / "scale-engine.png")
    print(table(rows))
    print(f"pysbd: {rate:,.0f} sentences/s; written {out_dir / 'scale-engine.json'} and scale-engine.png")
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| passages | sentences | index | build s (+ pysbd) | disk MB | load s | RSS MB (file-backed) "
        "| ask p50 / p95 ms | without reader | retrieval | recall@10 |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['passages']:,} | {r['sentences']:,} | `{r['index_factory']}` "
            f"| {r['build_s']:,} (+{r.get('pysbd_split_s', 0):,.0f}) | {r['disk_mb']:,} | {r['load_s']} "
            f"| {r['rss_mb']:,} ({r['rss_file_mb']:,}) | {r['ask_p50_ms']:.0f} / {r['ask_p95_ms']:.0f} "
            f"| {r['ask_without_reader_p50_ms']:.1f} / {r['ask_without_reader_p95_ms']:.1f} "
            f"| {r['retrieval_p50_ms']:.1f} / {r['retrieval_p95_ms']:.1f} | {r['recall_at_10']:.3f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Load time, serving RSS and ask latency against passages (log x), each with its target at 1M."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["passages"] for r in rows]
    panels = (
        ("load (process start → ready)", "s", [("load", "load_s")], 10),
        ("RSS while serving", "MB", [("total", "rss_mb"), ("file-backed (memory-mapped)", "rss_file_mb")], 3 * 1024),
        (
            "Engine.ask latency, p95",
            "ms",
            [
                ("ask", "ask_p95_ms"),
                ("ask, READER_MODEL=none", "ask_without_reader_p95_ms"),
                ("retrieval", "retrieval_p95_ms"),
            ],
            50,
        ),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (title, unit, series, target) in zip(axes, panels, strict=True):
        for label, key in series:
            ax.plot(n, [r[key] for r in rows], marker="o", label=label)
        ax.axhline(target, color="grey", linestyle=":", label=f"target at 1M: {target:,}")
        ax.set(xscale="log", xlabel="passages", ylabel=unit, title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _child(step: str, work: Path, queries: int, data: Path) -> dict:
    """Run `step` in a fresh Python process and return the JSON it prints last."""
    command = [sys.executable, __file__, "--step", step, str(work), repr(time.time()), "--queries", str(queries)]
    command += ["--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # offline: see index/__init__.py
    if done.returncode != 0:
        raise RuntimeError(f"{step} of {work} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_mb() -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of this process in MB (file-backed pages are memory-mapped index files)."""
    status = Path("/proc/self/status").read_text().splitlines()
    values = dict(line.split(":", 1) for line in status)
    return {key: round(int(values[key].split()[0]) / 1024) for key in ("VmRSS", "RssAnon", "RssFile")}


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description="Corpora of 10k to 1M passages built, loaded and asked end to end.")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="corpus sizes, in passages")
    parser.add_argument("--queries", type=int, default=300, help="questions asked of each index")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where scale-engine.json and its plot go")
    parser.add_argument("--data", type=Path, default=BENCHMARK_DATA, help="SQuAD-format file: texts and questions")
    parser.add_argument("--step", nargs=3, metavar=("STEP", "WORK", "LAUNCHED"), help=argparse.SUPPRESS)  # a child
    args = parser.parse_args()
    if args.step is None:
        run(args.sizes, args.queries, args.out_dir, args.data)
        return
    step, work, launched = args.step[0], Path(args.step[1]), float(args.step[2])
    result = (
        run_build(work, args.queries, args.data)
        if step == "build"
        else run_serve(work, args.queries, args.data, launched)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
