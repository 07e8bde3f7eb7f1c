"""What a right answer is, for the question sets: the fact quoted, the right paragraph cited first; or a refusal."""

from __future__ import annotations

from bot.replies import Answer


def assert_answers(case: dict, answer: Answer) -> None:
    """The answer states `fact` (or one of a list of facts) and cites one of `paragraphs` first."""
    facts = case["fact"] if isinstance(case["fact"], list) else [case["fact"]]
    assert not answer.abstained, answer
    assert any(f.lower() in answer.text.lower() for f in facts), answer.text
    assert answer.citations[0].paragraph in case["paragraphs"], answer.citations
    assert "[1]" in answer.text


def assert_abstains(answer: Answer) -> None:
    assert answer.abstained, answer.text
    assert answer.citations == [] and answer.short_answer is None
    assert answer.see_also, "an abstention points to the closest passages"
