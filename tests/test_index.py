"""The index library on real files: chunking, build → save → load, manifest checks and interrupted builds."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import new_engine

from bot.settings import BUNDLED_CORPUS, load_settings
from index.build import IndexConfig, build, make_store
from index.cache import EmbeddingCache, SentenceSplits
from index.documents import CorpusError, corpus_fingerprint, load_corpus
from index.embedder import Embedder
from index.folder import BuildInProgress, IndexFolder
from index.lexical import tokenize
from index.passages import Chunking, chunk
from index.retrieval import Fusion, search
from index.store import Store, StoreError

ARTICLEBOT = Path(sys.executable).parent / "articlebot"


def config(corpus: Path, index: Path) -> IndexConfig:
    return IndexConfig(corpus_dir=corpus, index_dir=index, chunking=Chunking())


def test_article_is_cleaned_and_offsets_round_trip() -> None:
    [doc] = load_corpus(BUNDLED_CORPUS)
    paragraphs = [doc.paragraph_text(p) for p in doc.paragraphs]
    assert doc.source == "BusinessKorea"
    assert sum(p.startswith("Attendees take commemorative photos") for p in paragraphs) == 1
    assert paragraphs[0].count("Attendees") == 1, "the caption printed twice is kept once"
    assert not any("Copyright" in p for p in paragraphs)
    passages, sentences = chunk([doc], Chunking())
    for s in sentences:
        assert " ".join(doc.text[s.start : s.end].split()) == s.text
    for p in passages:
        assert " ".join(doc.text[p.start : p.end].split()) == p.text
    assert any("Park Jung-sook" in s.text and s.paragraph == 11 for s in sentences)


def test_sentences_keep_abbreviations_and_passages_overlap(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text(
        "# Notes\n\nDr. Smith met U.N. officials. They talked for hours. Then they left. Rain fell hard.\n",
        encoding="utf-8",
    )
    [doc] = load_corpus(tmp_path)
    assert doc.title == "Notes"
    passages, sentences = chunk([doc], Chunking(max_chars=60, overlap=1))
    assert sentences[0].text == "Dr. Smith met U.N. officials."
    assert len(passages) > 1
    for earlier, later in itertools.pairwise(passages):
        assert later.first == earlier.last - 1, "consecutive passages share one sentence"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xff\xfe bad bytes \xff", b"---\n[unclosed\n---\ntext\n"])
def test_unusable_document_is_named_in_the_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "broken.txt").write_bytes(content)
    with pytest.raises(CorpusError, match=r"broken\.txt"):
        load_corpus(tmp_path)


def test_a_saved_store_loads_as_it_was_built(tmp_path: Path, embedder: Embedder, corpus_copy: Path) -> None:
    """The store held in memory by the build and the one loaded from its files answer alike, field by field."""
    cfg = config(corpus_copy, tmp_path / "index")
    cache, splits = EmbeddingCache(tmp_path / "cache", embedder.name), SentenceSplits(tmp_path / "cache", "pysbd")
    built, _ = make_store(cfg, embedder, corpus_fingerprint(corpus_copy), cache, 0.0, splits)
    built.save(tmp_path)
    loaded = Store.load(tmp_path, embedder.name)
    assert loaded.documents == built.documents
    assert replace(loaded.manifest, files={}) == replace(built.manifest, files={})
    assert list(loaded.passages) == list(built.passages) and list(loaded.sentences) == list(built.sentences)
    vectors = [store.vectors.reconstruct_n(0, store.vectors.ntotal) for store in (loaded, built)]
    assert np.array_equal(*vectors)
    for question in ("Where is Rubinstein based?", "Who heads WeGO's secretariat?", "smart city vulnerable"):
        vector, tokens = embedder.encode_query(question), tokenize(question)
        assert search([loaded], vector, tokens, Fusion()) == search([built], vector, tokens, Fusion())


def test_an_unchanged_corpus_is_not_rebuilt(tmp_path: Path, embedder: Embedder, corpus_copy: Path) -> None:
    cfg = config(corpus_copy, tmp_path / "index")
    first = build(cfg, embedder)
    assert not first.unchanged and first.documents == 1 and first.passages == 12
    built_at = Store.load(IndexFolder(cfg.index_dir).current(), embedder.name).manifest.built_at
    assert build(cfg, embedder).unchanged, "an unchanged corpus is not re-embedded"
    assert Store.load(IndexFolder(cfg.index_dir).current(), embedder.name).manifest.built_at == built_at
    assert not build(cfg, embedder, force=True).unchanged


def test_rebuild_embeds_only_text_it_has_not_seen(tmp_path: Path, embedder: Embedder, corpus_copy: Path) -> None:
    cfg = config(corpus_copy, tmp_path / "index")
    assert build(cfg, embedder).embedded > 0
    assert build(cfg, embedder, force=True).embedded == 0, "an unchanged corpus needs no embedding"
    (corpus_copy / "note.md").write_text("# Note\n\nThe rowing club meets on Tuesdays. It has 40 members.\n")
    added = build(cfg, embedder)
    assert added.documents == 2 and added.embedded == 3, "two sentences and their passage, nothing else"
    cached = Store.load(IndexFolder(cfg.index_dir).current(), embedder.name)
    uncached = build(config(corpus_copy, tmp_path / "fresh"), embedder)
    assert uncached.embedded > added.embedded
    fresh = Store.load(IndexFolder(tmp_path / "fresh").current(), embedder.name)
    assert list(cached.sentences) == list(fresh.sentences), "cached splits are the same"
    assert list(cached.passages) == list(fresh.passages)
    rows = cached.vectors.ntotal
    assert rows == fresh.vectors.ntotal
    # Equal up to float noise: sentence-transformers pads each batch differently.
    assert np.allclose(cached.vectors.reconstruct_n(0, rows), fresh.vectors.reconstruct_n(0, rows), atol=1e-5)


def test_model_mismatch_and_corruption_say_to_rebuild(tmp_path: Path, embedder: Embedder) -> None:
    cfg = config(BUNDLED_CORPUS, tmp_path / "index")
    build(cfg, embedder)
    live = IndexFolder(cfg.index_dir).current()
    with pytest.raises(StoreError, match=r"'all-MiniLM-L6-v2', configured model is 'other-model'.*articlebot build"):
        Store.load(live, "other-model")
    with open(live / "vectors.faiss", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(StoreError, match=r"vectors\.faiss is missing or corrupt: run `articlebot build`"):
        Store.load(live, embedder.name)


def test_concurrent_build_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    cfg = config(BUNDLED_CORPUS, tmp_path / "index")
    with IndexFolder(cfg.index_dir).new_build():
        with pytest.raises(BuildInProgress):
            build(cfg, embedder)
        assert IndexFolder(cfg.index_dir).current() is None, "the refused build published nothing"


@pytest.mark.timeout(180)
def test_killed_build_leaves_the_previous_index_loadable(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    build(config(BUNDLED_CORPUS, index_dir), embedder)
    before = IndexFolder(index_dir).current()
    big = tmp_path / "big"
    big.mkdir()
    for i in range(40):
        paragraphs = (
            f"Paragraph {j} of report {i} describes bridge number {i * 100 + j} in detail." for j in range(60)
        )
        (big / f"report{i}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    env = {**os.environ, "CORPUS_DIR": str(big), "INDEX_DIR": str(index_dir)}
    process = subprocess.Popen([ARTICLEBOT, "build", "--force"], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list((index_dir / "builds").glob("*.partial")) and time.monotonic() < deadline:
        assert process.poll() is None, "the build finished before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert IndexFolder(index_dir).current() == before
    store = Store.load(before, embedder.name)
    assert store.manifest.counts.passages == 12
    settings = load_settings(index_dir=index_dir, _env_file=None)
    assert build(config(Path(settings.corpus_dir), index_dir), embedder).unchanged


@pytest.mark.slow
@pytest.mark.parametrize(("index_type", "threshold"), [("auto", 1), ("HNSW16,Flat", 0), ("IVF8_HNSW8,Flat", 0)])
def test_approximate_indexes_answer_like_the_exact_one(
    tmp_path: Path, embedder: Embedder, index_type: str, threshold: int
) -> None:
    """Above APPROX_INDEX_THRESHOLD (here: always) the engine builds and tunes the index INDEX_TYPE describes."""
    settings = load_settings(
        index_dir=tmp_path, index_type=index_type, approx_index_threshold=max(threshold, 1), nprobe=24, _env_file=None
    )
    engine = new_engine(settings, embedder)
    answer = engine.ask("Who heads WeGO's secretariat?")
    assert "Park Jung-sook" in answer.text and answer.citations[0].paragraph == 11
    factory = engine.store.manifest.index_factory
    assert factory.startswith("IVF") if index_type == "auto" else factory == index_type
    ivf = faiss.try_extract_index_ivf(engine.store.vectors)
    if ivf is not None:
        assert ivf.nprobe == 24
        quantizer = faiss.downcast_index(ivf.quantizer)
        assert not hasattr(quantizer, "hnsw") or quantizer.hnsw.efSearch >= 24
