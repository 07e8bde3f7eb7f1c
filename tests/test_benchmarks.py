"""Smoke runs of the benchmarks on a tiny SQuAD-format file, so they cannot silently rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

TINY_SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Lighthouses",
            "paragraphs": [
                {
                    "context": "The Pharos of Alexandria was built in the 3rd century BC. It stood on an island.",
                    "qas": [
                        {
                            "question": "When was the Pharos built?",
                            "id": "a1",
                            "is_impossible": False,
                            "answers": [{"text": "3rd century BC", "answer_start": 38}],
                        },
                        {"question": "Who destroyed the Pharos?", "id": "a2", "is_impossible": True, "answers": []},
                    ],
                },
                {
                    "context": "Modern lighthouses use LED lamps. Keepers were replaced by automation.",
                    "qas": [
                        {
                            "question": "What lamps do modern lighthouses use?",
                            "id": "a3",
                            "is_impossible": False,
                            "answers": [{"text": "LED lamps", "answer_start": 23}],
                        },
                    ],
                },
            ],
        },
        {
            "title": "Bees",
            "paragraphs": [
                {
                    "context": "Honey bees communicate with a waggle dance. A colony has one queen.",
                    "qas": [
                        {
                            "question": "How do honey bees communicate?",
                            "id": "b1",
                            "is_impossible": False,
                            "answers": [{"text": "waggle dance", "answer_start": 30}],
                        },
                    ],
                },
            ],
        },
    ],
}


@pytest.fixture
def tiny_squad(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SQUAD), encoding="utf-8")
    return path


@pytest.mark.timeout(180)
def test_quality_benchmark_reports_every_metric(tiny_squad: Path, tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/quality.py", str(tiny_squad), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"all articles", "Lighthouses", "Bees"}
    both = results["all articles"]
    assert both["answerable"] == 3 and both["unanswerable"] == 1
    assert set(both["recall"]) == {"dense", "bm25", "hybrid"}
    assert both["recall"]["hybrid"]["@1"] > 0.5
    assert "| hybrid |" in run.stdout and "confidence roc auc" in run.stdout


@pytest.mark.timeout(300)
def test_speed_benchmark_quick_run_prints_ratios(tiny_squad: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/speed.py", "--quick", "--data", str(tiny_squad), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.read_text())
    for section, ratio in (
        ("warm", "p50_ratio"),
        ("warm_bundled", "p50_ratio"),
        ("build", "ratio"),
        ("cold_start", "ratio"),
    ):
        assert results[section][ratio] > 0
    assert results["memory"]["peak_rss_mb"] > 50
    assert "p50_ratio=" in run.stdout


@pytest.mark.timeout(120)
def test_scale_benchmark_measures_exact_approximate_and_bm25(tiny_squad: Path, tmp_path: Path) -> None:
    sizes = ["--sizes", "2000", "5000", "--queries", "4"]
    run = subprocess.run(
        [sys.executable, "benchmarks/scale.py", "--data", str(tiny_squad), *sizes, "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads((tmp_path / "scale.json").read_text())["rows"]
    assert [r["n"] for r in rows] == [2000] * 3 + [5000] * 3
    assert ["IVF" if r["index"].startswith("IVF") else r["index"] for r in rows] == ["Flat", "IVF", "BM25"] * 2
    assert all(r["build_s"] > 0 and r["disk_mb"] > 0 and 0 < r["k10_p50_ms"] <= r["k10_p95_ms"] for r in rows)
    assert all(0 <= r["recall_at_10"] <= 1 for r in rows if r["index"] != "BM25")
    assert [r["engine"] for r in rows] == [True, False, True] * 2  # exact below APPROX_INDEX_THRESHOLD
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    assert "| 5,000 | `IVF" in run.stdout


@pytest.mark.timeout(240)
def test_end_to_end_scale_builds_loads_and_asks_through_the_engine(tiny_squad: Path, tmp_path: Path) -> None:
    args = ["--data", str(tiny_squad), "--sizes", "300", "--queries", "4", "--out-dir", str(tmp_path)]
    env = os.environ | {"APPROX_INDEX_THRESHOLD": "500"}  # the approximate index, as a large corpus gets it
    run = subprocess.run(
        [sys.executable, "benchmarks/engine_scale.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [row] = json.loads((tmp_path / "scale-engine.json").read_text())
    assert row["passages"] >= 300 and row["sentences"] >= 2 * 300 and row["vectors"] > 1000
    assert row["index_factory"].endswith(",SQ8")
    assert row["load_s"] > 0 and row["rss_mb"] > row["rss_file_mb"] > 0 and row["disk_mb"] > 0
    assert 0 < row["retrieval_p50_ms"] <= row["retrieval_p95_ms"] < row["ask_without_reader_p95_ms"] < row["ask_p95_ms"]
    assert 0.5 <= row["recall_at_10"] <= 1, "the approximate index finds most of the exact top 10"
    assert (tmp_path / "scale-engine.png").stat().st_size > 10_000
    assert "| 3" in run.stdout and "SQ8" in run.stdout


@pytest.mark.timeout(300)
def test_documents_benchmark_times_an_add_against_embedding_alone(tiny_squad: Path, tmp_path: Path) -> None:
    out = tmp_path / "documents.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/documents.py", "--data", str(tiny_squad), "--articles", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.read_text())
    assert results["corpus"]["documents"] == 1
    assert results["add"]["ratio"] > 0 and results["add"]["texts"] > 0
    assert results["unchanged_rebuild"]["embedded"] == 0, "an unchanged corpus is not embedded again"
    assert '"ratio"' in run.stdout


def test_conversation_benchmark_compares_history_with_none(tmp_path: Path) -> None:
    out = tmp_path / "conversations.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/conversations.py", "--limit", "5", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.read_text())
    with_history, alone = results["with history"], results["without history"]
    assert results["conversations"] == 5 and with_history["turns"] == alone["turns"] == 12
    for row in (with_history, alone):
        assert all(0 <= row[kind] <= 1 for kind in ("first", "follow_up", "new_topic")), row
    assert "with history" in run.stdout and "follow_up" in run.stdout


@pytest.mark.timeout(240)
def test_soak_replies_to_every_question_and_click_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "benchmarks/soak.py", "--minutes", "0.5", "--members", "5", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.read_text())
    assert result["asked"] > 0 and result["exactly_once"] == result["asked"]
    assert result["unanswered"] == result["duplicated"] == result["failed_requests"] == 0
    assert result["admin"]["add"].startswith("Nothing changed: ") and result["admin"]["add document"].startswith(
        "Added"
    )
    assert result["admin"]["rebuild"].startswith("Index already up to date: 1 documents")
    assert "minute   1:" in run.stdout
