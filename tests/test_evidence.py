"""The evidence model and the answers it makes possible: yes/no, describe, list and keyword questions answered with
the sentence that settles them (answer_type "evidence"), questions about what the article does not state refused,
corrupt weights refused, and EVIDENCE_MODEL=none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import own_settings

from bot.calibration import load_calibrator
from bot.cli import answer_json
from bot.engine import Engine
from bot.evidence import CARD, EVIDENCE_DIR, WEIGHTS, Evidence
from bot.reader import BUNDLED_DIR
from bot.settings import Settings
from index.embedder import Embedder, ModelError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return Evidence.load()


def test_the_sentence_that_settles_a_yes_no_question_scores_above_its_neighbours(evidence: Evidence) -> None:
    sentences = [
        ("The museum is closed on Mondays.", "The city museum reopened in May."),
        ("Its café serves lunch from noon.", "The museum is closed on Mondays."),
        ("The mayor opened a new bridge.", ""),
    ]
    scores = evidence.scores("Does the museum open on Mondays?", sentences)
    assert scores.argmax() == 0 and scores[0] > scores[2] + 2, scores


def test_a_name_reached_through_a_possessive_is_evidence(evidence: Evidence) -> None:
    before = "The Harbour Hotel reopened after a year of repairs."
    scores = evidence.scores(
        "Who manages the hotel?",
        [("Its manager, Ilse Marrow, said bookings were strong.", before), ("Rooms cost 90 euros a night.", before)],
    )
    assert scores[0] > scores[1], scores


def test_a_yes_no_question_is_answered_with_the_sentence_that_settles_it(engine: Engine) -> None:
    answer = engine.ask("Was Rubinstein the keynote speaker?")
    assert not answer.abstained and answer.answer_type == "evidence" and answer.short_answer is None
    assert "keynote address" in answer.text and answer.citations[0].paragraph == 5
    data = answer_json(answer)
    assert data["answer_type"] == "evidence" and data["short_answer"] is None


def test_a_yes_no_question_answered_no_by_another_place_is_answered(engine: Engine) -> None:
    answer = engine.ask("Was the assembly held in Busan?")
    assert not answer.abstained and answer.answer_type == "evidence" and answer.short_answer is None
    assert "Seoul City Hall" in answer.text and answer.citations[0].paragraph == 1


GARDEN = """---
title: "Museum garden reopens"
---
The museum garden reopened on Saturday after a year of work. During the opening, a visitor asked whether dogs would
be allowed in the garden. The director said they would not, but a shaded dog area has been built by the gate.

Tickets for the garden cost 4 euros and are sold at the museum shop.
"""


def test_a_yes_no_answer_in_the_sentence_after_the_question_s_words_is_quoted(
    embedder: Embedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "garden.txt").write_text(GARDEN, encoding="utf-8")
    engine = Engine(own_settings(corpus, tmp_path, min_confidence=0.0), embedder)
    answer = engine.ask("Are dogs allowed in the garden?")
    assert answer.answer_type == "evidence" and "asked whether dogs" in answer.text
    assert "they would not" in answer.text and "Tickets" not in answer.text


def test_a_question_about_an_edition_the_article_does_not_cover_is_refused(engine: Engine) -> None:
    answer = engine.ask("When was the 5th WeGO General Assembly held?")
    assert answer.abstained and answer.answer_type == "abstained" and answer.see_also


def test_a_span_question_still_gets_its_short_answer(engine: Engine) -> None:
    answer = engine.ask("Where is WeGO's secretariat based?")
    assert answer.answer_type == "span" and answer.short_answer is not None and "Seoul" in answer.short_answer
    assert answer.short_answer in answer.text


def test_corrupt_weights_are_refused_with_a_fix(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(EVIDENCE_DIR, tmp_path / "evidence"))
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="EVIDENCE_MODEL=none"):
        Evidence.load(folder)


def test_the_card_records_training_data_apart_from_what_calibrates_and_tests() -> None:
    card = json.loads((EVIDENCE_DIR / CARD).read_text(encoding="utf-8"))
    reader_card = json.loads((BUNDLED_DIR / "reader.json").read_text(encoding="utf-8"))
    assert set(card["training"]["held_out"]) == set(reader_card["training"]["held_out"])
    assert not set(card["training"]["squad_articles"]) & set(card["training"]["held_out"])
    assert card["training"]["boolq_part"] == "train"
    assert card["held_out_metrics"]["boolq_test"]["roc_auc"] > 0.8
    assert (EVIDENCE_DIR / WEIGHTS).stat().st_size < 50 * 2**20


def test_without_the_evidence_model_the_reader_alone_decides(settings: Settings, embedder: Embedder) -> None:
    engine = Engine(settings.model_copy(update={"evidence_model": "none"}), embedder)
    assert engine.answerer.evidence is None
    assert engine.answerer.calibrator == load_calibrator(BUNDLED_DIR, "reader")
    answer = engine.ask("Where is WeGO's secretariat based?")
    assert not answer.abstained and "Seoul" in answer.text
