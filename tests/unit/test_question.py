"""What kind of answer a question asks for, read from its grammar; its words and numbers against the evidence."""

from __future__ import annotations

import pytest

from bot.question import as_question, coverage, kind, numbers, unmatched_numbers


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Does the museum open on Mondays?", "yes_no"),
        ("can members bring guests", "yes_no"),
        ("is house tax and property tax are same", "yes_no"),
        ("Isn't the bar closed on Sundays?", "yes_no"),
        ("Why are fees going up?", "describe"),
        ("how did the club end up with a surplus", "describe"),
        ("Describe the new safety boat", "describe"),
        ("What about the grant?", "describe"),
        ("How many clubs race this year?", "span"),
        ("How often is the fair held?", "span"),
        ("Which risks does the report list?", "list"),
        ("What courses are running this season?", "list"),
        ("What was on the agenda?", "span"),
        ("What does ABC stand for?", "span"),
        ("Which class is new?", "span"),
        ("Who manages the hotel?", "span"),
        ("membership fees", "keyword"),
        ("Lisbon", "keyword"),
        ("who is the boss of the office", "span"),
        ("Lisbon?", "span"),
        ("the fees for juniors and for adults this year at the club", "span"),
    ],
)
def test_the_kind_of_answer_follows_the_grammar(question: str, expected: str) -> None:
    assert kind(question) == expected


def test_a_bare_keyword_is_asked_about_and_a_question_stays_as_it_is() -> None:
    assert as_question("membership fees") == "What does the article say about membership fees?"
    assert as_question("Who runs it?") == "Who runs it?"


def test_coverage_counts_the_question_words_the_evidence_holds_after_lemmas() -> None:
    assert coverage("Which cities got offices?", "Regional offices open in three cities.") == pytest.approx(2 / 3)
    assert coverage("Who?", "Anything.") == 1.0, "a question of stop words alone asks nothing to be covered"


def test_numbers_in_digits_and_words_and_the_ones_the_evidence_misses() -> None:
    assert numbers("the 6th assembly, the twelfth regatta, three boats in 2031") == {6, 12, 3, 2031}
    assert unmatched_numbers("When was the 5th assembly held?", "The 6th assembly was held in Seoul.") == 1.0
    assert unmatched_numbers("Which edition was the twelfth?", "This year's regatta, the 12th, …") == 0.0
    assert unmatched_numbers("Which one won?", "Curlew won two races.") == 0.0, "a cardinal word asks no number"
