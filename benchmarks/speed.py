"""Speed, as ratios to the floor measured in the same run on the same machine.

- warm answer latency (on the SQuAD file, and on the bundled article with the project's own questions about it)
  vs one `model.encode` of the question + one FAISS search + one reader forward pass over
  the passages the answerer reads + one evidence-model pass over their sentences;
- cold start (process start → first answer) vs importing sentence-transformers and FAISS and loading the
  embedding model, the reader and the evidence model;
- build throughput (texts embedded per second by a build) vs one `model.encode` call on the same texts;
- peak memory of a serving process;
- scale (benchmarks/scale.py): exact and approximate FAISS indexes at 10k–1M vectors.

Usage: python benchmarks/speed.py [--questions N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer import context, sentence_pairs
from bot.engine import Engine
from bot.evidence import EVIDENCE_DIR
from bot.evidence import WEIGHTS as EVIDENCE_WEIGHTS
from bot.reader import BUNDLED_DIR, WEIGHTS
from bot.settings import load_settings
from index.build import build
from index.documents import load_corpus
from index.embedder import Embedder, model_location
from index.passages import chunk
from training.squad import BENCHMARK_DATA, write_corpus

RESULTS = ROOT / "benchmarks" / "results"
OWN_QUESTIONS = ROOT / "tests" / "questions.yaml"
ARTICLEBOT = Path(sys.executable).parent / "articlebot"


def own_questions(path: Path = OWN_QUESTIONS) -> list[str]:
    """The project's questions about the bundled article, answerable and not."""
    cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [case["question"] for case in cases["answerable"]] + list(cases["unanswerable"])


def squad_questions(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]


def warm_latency(engine: Engine, questions: list[str]) -> dict:
    """Per-question latency of `engine.ask` next to the floor: encode + one search of the same index + one reader
    pass over the passages `ask` reads for that question + one evidence pass over their sentences."""
    store, model = engine.store, engine.embedder.model
    reader, evidence = engine.answerer.reader, engine.answerer.evidence
    engine.ask(questions[0])
    answer_ms, floor_ms = [], []
    for q in questions:
        started = time.perf_counter()
        engine.ask(q)
        answer_ms.append((time.perf_counter() - started) * 1000)
        found = list({c.found.hit.passage: c.found for c in engine.candidates(q)}.values())  # what `ask` reads
        contexts = [context(f) for f in found]
        _, pairs = sentence_pairs(found)
        started = time.perf_counter()
        vector = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        store.vectors.search(vector, min(100, store.vectors.ntotal))
        if reader is not None:
            reader.read(q, contexts)
        if evidence is not None:
            evidence.scores(q, pairs)
        floor_ms.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(answer_ms, [50, 95])
    f50, f95 = np.percentile(floor_ms, [50, 95])
    return {
        "questions": len(questions),
        "answer_p50_ms": round(p50, 2),
        "answer_p95_ms": round(p95, 2),
        "floor_p50_ms": round(f50, 2),
        "floor_p95_ms": round(f95, 2),
        "p50_ratio": round(p50 / f50, 3),
        "p95_ratio": round(p95 / f95, 3),
    }


def cold_start(env: dict[str, str], repeats: int) -> dict:
    """Best-of-N wall time of `articlebot ask` (index already built) vs import + loading the models (the embedder;
    the reader's and the evidence model's base, their trained tensors and tokenizer) in a fresh process."""
    base = model_location("all-MiniLM-L6-v2")
    floor_code = (
        "import sentence_transformers, faiss, transformers, safetensors.torch; "
        f"sentence_transformers.SentenceTransformer({base!r}, device='cpu'); "
        f"m = transformers.AutoModelForQuestionAnswering.from_pretrained({base!r}); "
        f"m.load_state_dict(safetensors.torch.load_file({str(BUNDLED_DIR / WEIGHTS)!r}), strict=False); "
        f"e = transformers.AutoModelForSequenceClassification.from_pretrained({base!r}, num_labels=1); "
        f"e.load_state_dict(safetensors.torch.load_file({str(EVIDENCE_DIR / EVIDENCE_WEIGHTS)!r}), strict=False); "
        f"transformers.AutoTokenizer.from_pretrained({base!r})"
    )
    ask = [str(ARTICLEBOT), "ask", "Who heads WeGO's secretariat?"]
    answer_s = min(_wall(ask, env) for _ in range(repeats))
    floor_s = min(_wall([sys.executable, "-c", floor_code], env) for _ in range(repeats))
    return {"answer_s": round(answer_s, 2), "floor_s": round(floor_s, 2), "ratio": round(answer_s / floor_s, 3)}


def build_throughput(engine: Engine) -> dict:
    """Texts embedded per second by a build from scratch (an empty index folder: no embedding cache) vs a single
    `model.encode` of the same texts."""
    documents = load_corpus(engine.library.base.config.corpus_dir)
    passages, sentences = chunk(documents, engine.library.base.config.chunking)
    texts = [p.text for p in passages] + [s.text for s in sentences]
    started = time.perf_counter()
    engine.embedder.model.encode(texts, batch_size=engine.embedder.batch_size, normalize_embeddings=True)
    floor_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as empty:
        started = time.perf_counter()
        build(replace(engine.library.base.config, index_dir=Path(empty)), engine.embedder)
        build_s = time.perf_counter() - started
    return {
        "texts": len(texts),
        "passages": len(passages),
        "build_texts_per_s": round(len(texts) / build_s, 1),
        "encode_texts_per_s": round(len(texts) / floor_s, 1),
        "ratio": round(floor_s / build_s, 3),
    }


def serving_memory(env: dict[str, str], questions: list[str]) -> dict:
    """Peak RSS of an `articlebot ask --batch` process answering the questions."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [str(ARTICLEBOT), "ask", "--json", "--batch", "-"],
        input="\n".join(questions),
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"peak_rss_mb": round(max(peak, before) / 1024, 1)}


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BENCHMARK_DATA, help="SQuAD-format file: corpus and questions")
    parser.add_argument("--questions", type=int, default=300, help="questions for the warm-latency measure")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (no scale part)")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the 10k-1M vector scale part")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    args = parser.parse_args()
    count, repeats = (20, 1) if args.quick else (args.questions, 3)
    results = {"machine": {"cores": os.cpu_count(), "cpu": _cpu_name()}}
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(json.loads(args.data.read_text(encoding="utf-8"))["data"], Path(tmp) / "corpus")
        env = {**os.environ, "CORPUS_DIR": str(Path(tmp) / "corpus"), "INDEX_DIR": str(Path(tmp) / "index")}
        settings = load_settings(corpus_dir=env["CORPUS_DIR"], index_dir=env["INDEX_DIR"], _env_file=None)
        engine = Engine(settings, Embedder().load())
        questions = squad_questions(args.data)[:count]
        results["warm"] = warm_latency(engine, questions)
        results["build"] = build_throughput(engine)
        results["cold_start"] = cold_start(env, repeats)
        results["memory"] = serving_memory(env, questions)
        bundled = load_settings(index_dir=Path(tmp) / "bundled-index", _env_file=None)  # the article that ships
        own = own_questions()[: 5 if args.quick else None] * repeats
        results["warm_bundled"] = warm_latency(Engine(bundled, engine.embedder), own)
    if not (args.quick or args.skip_scale):
        from benchmarks.scale import run_scale

        results["scale"] = run_scale(out_dir=RESULTS)
    for name, values in results.items():
        if name != "scale":
            print(f"{name:11} " + "  ".join(f"{k}={v}" for k, v in values.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
