"""Question sets answered by the real engine and the bundled reader: facts, cited paragraphs and abstentions, on
the bundled article and on a second article written for the tests."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cases import judge

from bot.engine import Engine

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SETS = {"wego": HERE / "questions.yaml", "rowing": HERE / "articles" / "rowing.yaml"}
QUESTIONS = {name: yaml.safe_load(path.read_text(encoding="utf-8")) for name, path in SETS.items()}


def cases(kind: str) -> list:
    """Every question of one kind in both sets, with whether it is one of the engine's known misses."""
    out = []
    for name, data in QUESTIONS.items():
        for case in data[kind]:
            question = case if kind == "unanswerable" else case["question"]
            missed = question in data.get("reader_misses", [])
            out.append(pytest.param(name, case, missed, id=f"{name}: {question}"))
    return out


@pytest.mark.parametrize(("article", "case", "missed"), cases("answerable"))
def test_answerable_question_cites_the_right_paragraph(engines: dict, article: str, case: dict, missed: bool) -> None:
    engine = engines[article]
    judge(case, engine.ask(case["question"]), engine.answerer.min_confidence, missed)


@pytest.mark.parametrize(("article", "question", "missed"), cases("unanswerable"))
def test_unanswerable_question_abstains(engines: dict, article: str, question: str, missed: bool) -> None:
    engine = engines[article]
    judge({"question": question, "abstain": True}, engine.ask(question), engine.answerer.min_confidence, missed)


def test_the_known_misses_are_questions_of_the_set_and_a_minority() -> None:
    for data in QUESTIONS.values():
        asked = [c["question"] for c in data["answerable"]] + data["unanswerable"]
        assert set(data["reader_misses"]) <= set(asked) and len(data["reader_misses"]) < len(asked) / 2


def test_question_sets_are_large_enough() -> None:
    assert len(QUESTIONS["wego"]["answerable"]) >= 35 and len(QUESTIONS["wego"]["unanswerable"]) >= 20
    assert len(QUESTIONS["rowing"]["answerable"]) >= 15 and len(QUESTIONS["rowing"]["unanswerable"]) >= 6


@pytest.mark.parametrize("article", SETS)
def test_every_claim_is_a_quote_of_the_passage_it_cites(engines: dict, article: str) -> None:
    for case in QUESTIONS[article]["answerable"]:
        answer = engines[article].ask(case["question"])
        if answer.abstained:
            continue
        quotes = {c.n: c.text for c in answer.citations}
        claims = re.findall(r"(.+?) \[(\d+)\](?: |$)", answer.text)
        assert claims and " ".join(f"{t} [{n}]" for t, n in claims) == answer.text
        for text, n in claims:
            assert text in quotes[int(n)]
        assert answer.short_answer is None or answer.short_answer in claims[0][0], "the short answer is quoted"


@pytest.mark.xfail(strict=True, reason="the bundled reader includes the title: 'Secretary-General Park Jung-sook'")
def test_the_short_answer_is_just_the_name(engines: dict) -> None:
    answer = engines["wego"].ask("Who heads WeGO's secretariat?")
    assert answer.short_answer == "Park Jung-sook"
    assert "Park Jung-sook" in answer.text and 0.0 < answer.confidence <= 1.0


def test_a_yes_no_question_gets_the_sentence_not_a_span(engines: dict) -> None:
    answer = engines["rowing"].ask("Was the sponsorship deal renewed?")
    assert not answer.abstained and answer.short_answer is None and "renewed in March" in answer.text


def test_answers_are_deterministic(engine: Engine) -> None:
    first, second = (engine.ask("Where is Joanna Rubinstein based?") for _ in range(2))
    assert replace(first, timings_ms={}) == replace(second, timings_ms={})
