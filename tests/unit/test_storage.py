"""How the index is stored and searched at scale, tested directly: columns, window lookup, BM25 postings, file
checks, the embedding cache and the sentence splitters (no model, no emulator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import store as store_module
from index.cache import EmbeddingCache
from index.columns import Table, Texts
from index.lexical import bm25_matches, build_bm25, tokenize
from index.passages import SPLITTERS, Chunking, Passage, Sentence, sentence_windows, windows_holding
from index.store import FileCheck

PASSAGES = [
    Passage("a.md", 1, 0, 30, "Café Müller opened in Zürich.", 0, 2, None),
    Passage("b.pdf", 3, 10, 52, "The report — “quoted” — is on page two.", 2, 3, 2),
]


def test_a_table_saved_and_loaded_gives_back_the_same_rows(tmp_path: Path) -> None:
    Table.of(Passage, PASSAGES, ["a.md", "b.pdf"]).save(tmp_path, "passages")
    table = Table.load(Passage, ["a.md", "b.pdf"], tmp_path, "passages")
    assert list(table) == PASSAGES and table[-1] == PASSAGES[1] and table[0:1] == PASSAGES[:1]
    assert table.column("last").tolist() == [2, 3]
    with pytest.raises(IndexError):
        table[2]


def test_a_table_whose_columns_do_not_fit_its_rows_is_refused(tmp_path: Path) -> None:
    Table.of(Passage, PASSAGES, ["a.md", "b.pdf"]).save(tmp_path, "rows")
    with pytest.raises(ValueError, match="columns do not match"):
        Table.load(Sentence, ["a.md", "b.pdf"], tmp_path, "rows")


def test_texts_are_read_one_at_a_time_from_their_file(tmp_path: Path) -> None:
    Texts.of(["", "naïve", "東京"]).save(tmp_path, "t")
    texts = Texts.load(tmp_path, "t")
    assert [texts[2], texts[0], texts[1]] == ["東京", "", "naïve"] and list(texts) == ["", "naïve", "東京"]
    with open(tmp_path / "t-texts.bin", "ab") as handle:
        handle.write(b"!")
    with pytest.raises(ValueError, match="does not hold the texts"):
        Texts.load(tmp_path, "t")


def test_the_windows_holding_a_sentence_are_found_by_binary_search() -> None:
    lengths = [30, 50, 10, 80, 20, 20, 60, 5, 90, 40]
    windows = list(sentence_windows(lengths, Chunking(max_chars=100, overlap=1)))
    first, last = (np.array(column) for column in zip(*windows, strict=True))
    for sentences in ([0], [3], [9], [2, 7], [], list(range(10))):
        expected = sorted({w for w, (a, b) in enumerate(windows) if any(a <= s < b for s in sentences)})
        assert windows_holding(first, last, np.array(sentences, dtype=np.int64)).tolist() == expected


def test_bm25_matches_score_like_bm25s_over_the_whole_corpus() -> None:
    texts = ["the league opens in Bergen", "its head coach rows", "Bergen hosts the league final"]
    texts += ["rowing boats on the water"] * 397
    retriever = build_bm25([tokenize(t) for t in texts])
    rare, common = "Where does the league open? Bergen Bergen coach", "rowing boats in Bergen"  # postings ≪ / ≈ corpus
    for question in (rare, common, "unknown words only", ""):
        tokens = tokenize(question)
        known = [t for t in tokens if t in retriever.vocab_dict]
        full = retriever.get_scores(known) if known else np.zeros(len(texts))
        matched, scores = bm25_matches(retriever, tokens)
        assert matched.tolist() == np.flatnonzero(full).tolist()
        np.testing.assert_allclose(scores, full[matched], rtol=1e-5)


def test_file_checks_catch_a_changed_size_always_and_changed_bytes_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"x" * 100)
    check = FileCheck.of(path)
    path.write_bytes(b"y" * 100)
    assert check.problem(path) == "corrupt"
    monkeypatch.setattr(store_module, "VERIFY_BYTES", 99)
    assert check.problem(path) is None, "a large file is checked by size only, not re-hashed on every load"
    path.write_bytes(b"x" * 99)
    assert check.problem(path) == "missing or corrupt"
    path.unlink()
    assert check.problem(path) == "missing or corrupt"


def test_the_embedding_cache_keeps_exactly_the_last_builds_texts(tmp_path: Path) -> None:
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache = EmbeddingCache(tmp_path, "model")
    cache.keep(["a", "b", "c"], vectors)
    cache.save()
    loaded = EmbeddingCache(tmp_path, "model").load()
    found, missing = loaded.lookup(["c", "new", "a"])
    assert missing == [1] and found[0].tolist() == [4, 5] and found[2].tolist() == [0, 1]
    assert EmbeddingCache(tmp_path, "other model").load().lookup(["a"]) == ({}, [0]), "keyed by the model too"


@pytest.mark.parametrize("splitter", sorted(SPLITTERS))
def test_each_splitter_gives_spans_of_whole_sentences(splitter: str) -> None:
    text = "The club was founded in 1921. It races on the lake every June."
    assert [text[a:b].strip() for a, b in SPLITTERS[splitter](text)] == [
        "The club was founded in 1921.",
        "It races on the lake every June.",
    ]
    assert SPLITTERS[splitter]("   ") == []
