"""The article's own question set, answered by the real engine: facts, cited paragraphs and abstentions."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.engine import Engine

QUESTIONS = yaml.safe_load((Path(__file__).parent / "questions.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", QUESTIONS["answerable"], ids=lambda c: c["question"])
def test_answerable_question_cites_the_right_paragraph(engine: Engine, case: dict) -> None:
    answer = engine.ask(case["question"])
    facts = case["fact"] if isinstance(case["fact"], list) else [case["fact"]]
    assert not answer.abstained, answer
    assert any(f.lower() in answer.text.lower() for f in facts), answer.text
    assert answer.citations[0].paragraph in case["paragraphs"], answer.citations
    assert "[1]" in answer.text


@pytest.mark.parametrize("question", QUESTIONS["unanswerable"])
def test_unanswerable_question_abstains(engine: Engine, question: str) -> None:
    answer = engine.ask(question)
    assert answer.abstained, answer.text
    assert answer.citations == []
    assert answer.see_also, "an abstention points to the closest passages"


def test_question_set_is_large_enough() -> None:
    assert len(QUESTIONS["answerable"]) >= 25
    assert len(QUESTIONS["unanswerable"]) >= 6


def test_every_claim_is_a_quote_of_the_passage_it_cites(engine: Engine) -> None:
    for case in QUESTIONS["answerable"]:
        answer = engine.ask(case["question"])
        quotes = {c.n: c.text for c in answer.citations}
        claims = re.findall(r"(.+?) \[(\d+)\](?: |$)", answer.text)
        assert claims and " ".join(f"{t} [{n}]" for t, n in claims) == answer.text
        for text, n in claims:
            assert text in quotes[int(n)]


def test_answers_are_deterministic(engine: Engine) -> None:
    first, second = (engine.ask("Where is Joanna Rubinstein based?") for _ in range(2))
    assert replace(first, timings_ms={}) == replace(second, timings_ms={})
