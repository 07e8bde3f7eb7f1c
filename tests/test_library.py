"""Per-server knowledge with the real model and real FAISS indexes: each server answers from the shared base and its
own documents, never another server's; server indexes are opened on demand and closed under a memory budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import new_engine, own_settings

from bot.engine import NOTHING_YET, Engine
from bot.errors import InvalidQuestion
from index.documents import DocumentError
from index.embedder import Embedder
from index.folder import BuildInProgress

ARTICLES = Path(__file__).parent / "articles"
DEVSET = Path(__file__).parent / "devset"
ROWING = (ARTICLES / "rowing" / "northern-rowing-league.txt").read_bytes()
SAILING = (DEVSET / "newsletter" / "harbour-sailing-club.txt").read_bytes()
TIDEPOOL = (DEVSET / "release" / "tidepool-4-2.txt").read_bytes()
COACH = "Who is the head coach of the Northern Rowing League?"
SECRETARIAT = "Who heads WeGO's secretariat?"
A, B, C = 101, 202, 303


@pytest.fixture
def engine(embedder: Embedder, corpus_copy: Path, tmp_path: Path) -> Engine:
    return new_engine(own_settings(corpus_copy, tmp_path), embedder)


def cited(engine: Engine, question: str, server: int | None) -> set[str]:
    return {c.document for c in engine.ask(question, server=server).citations}


def test_a_server_document_is_cited_in_that_server_only(engine: Engine) -> None:
    added = engine.library.manager(A).add_file("rowing.txt", ROWING)

    answer = engine.ask(COACH, server=A)
    assert not answer.abstained and "Lindqvist" in answer.text
    assert answer.citations[0].document == added.document.id
    for elsewhere in (B, None):  # another server, a DM or the terminal
        assert added.document.id not in cited(engine, COACH, elsewhere)
        assert "Lindqvist" not in engine.ask(COACH, server=elsewhere).text
    assert engine.library.servers() == [A]
    assert [d.id for d in engine.library.base.sources().documents] == ["wego-general-assembly.txt"]


def test_a_server_answers_from_the_shared_base_and_its_own_documents(engine: Engine) -> None:
    engine.library.manager(A).add_file("rowing.txt", ROWING)
    base = engine.ask(SECRETARIAT, server=A)
    assert not base.abstained and base.citations[0].document == "wego-general-assembly.txt"
    assert "Park Jung-sook" in base.text


def test_without_the_shared_base_a_server_knows_only_its_own(embedder: Embedder, corpus_copy: Path, tmp_path) -> None:
    engine = new_engine(own_settings(corpus_copy, tmp_path, base_corpus=False), embedder)
    with pytest.raises(InvalidQuestion, match="no documents yet"):
        engine.ask(SECRETARIAT, server=A)
    assert NOTHING_YET.startswith("This server has no documents")

    engine.library.manager(A).add_file("rowing.txt", ROWING)
    assert "wego-general-assembly.txt" not in cited(engine, SECRETARIAT, A)
    assert "Lindqvist" in engine.ask(COACH, server=A).text
    assert "wego-general-assembly.txt" in cited(engine, SECRETARIAT, None)  # DMs answer from the base


def test_one_server_cannot_remove_another_servers_document(engine: Engine) -> None:
    added = engine.library.manager(A).add_file("rowing.txt", ROWING)
    with pytest.raises(DocumentError, match="no document"):
        engine.library.manager(B).remove(added.document.id)
    assert engine.library.manager(B).sources().documents == []
    assert "Lindqvist" in engine.ask(COACH, server=A).text


def test_removing_a_servers_last_document_leaves_the_base(engine: Engine) -> None:
    library = engine.library
    added = library.manager(A).add_file("rowing.txt", ROWING)
    library.manager(A).remove(added.document.id)
    assert library.servers() == [] and library.manager(A).store is None
    assert added.document.id not in cited(engine, COACH, A)
    with pytest.raises(DocumentError, match="last document"):  # the base keeps its last document
        library.base.remove("wego-general-assembly.txt")


def test_forgetting_a_server_deletes_its_documents_and_index(engine: Engine) -> None:
    library = engine.library
    library.manager(A).add_file("rowing.txt", ROWING)
    library.manager(B).add_file("sailing.txt", SAILING)
    assert library.forget(A) and not (library.servers_dir / str(A)).exists()
    assert library.servers() == [B] and not library.forget(A)
    assert "Lindqvist" not in engine.ask(COACH, server=A).text
    assert library.manager(B).sources().documents


def test_a_server_being_changed_is_not_forgotten_midway(engine: Engine) -> None:
    library = engine.library
    library.manager(A).add_file("rowing.txt", ROWING)
    with library.manager(A)._exclusive(), pytest.raises(BuildInProgress):
        library.forget(A)
    assert library.servers() == [A]


def test_with_a_budget_for_two_server_indexes_three_servers_all_answer(
    embedder: Embedder, corpus_copy: Path, tmp_path: Path
) -> None:
    engine = new_engine(own_settings(corpus_copy, tmp_path), embedder)
    library = engine.library
    documents = {
        server: library.manager(server).add_file(name, data).document.id
        for server, name, data in (
            (A, "rowing.txt", ROWING),
            (B, "sailing.txt", SAILING),
            (C, "tidepool.txt", TIDEPOOL),
        )
    }
    footprints = sorted(library.server(s).footprint for s in (A, B, C))
    library.memory_bytes = footprints[-1] + footprints[-2]  # room for any two, not for three

    questions = {
        A: (COACH, "Lindqvist"),
        B: ("Who is the club's commodore?", "Ruth Callander"),
        C: ("When was Tidepool 4.2 released?", "3 March 2025"),
    }
    for server in (A, B, C, A, B, C):
        question, fact = questions[server]
        answer = engine.ask(question, server=server)
        assert fact in answer.text and answer.citations[0].document == documents[server]
        assert len(library._open) <= 2 and server in library._open
