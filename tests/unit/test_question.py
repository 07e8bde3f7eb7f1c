"""What kind of answer a question asks for, read from its grammar; its words and numbers against the evidence."""

from __future__ import annotations

import pytest

from bot.question import as_question, coverage, kind, numbers, other_edition, other_occasion, unmatched_numbers


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
        ("what are the breaking changes", "list"),
        ("What were the main causes of the war?", "list"),
        ("What is the main cause of the war?", "span"),
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


@pytest.mark.parametrize(
    ("question", "evidence", "other"),
    [
        ("Who chaired the 5th assembly?", "The 6th assembly was chaired by Ana Lima.", True),
        ("Who chaired the fifth assembly?", "The 5th assembly was chaired by Ana Lima.", False),
        ("What changed in version 4.3?", "Version 4.2 removed the legacy API.", True),
        ("Who came second?", "Oslo came in second place.", False),
    ],
)
def test_an_edition_or_version_the_evidence_does_not_state(question: str, evidence: str, other: bool) -> None:
    assert other_edition(question, evidence) is other


@pytest.mark.parametrize(
    ("question", "evidence", "other"),
    [
        ("Where will the next congress be held?", "The congress was held in Seoul this year.", True),
        ("Where will next year's regatta be held?", "This year's regatta took place on Lake Bled.", True),
        ("When is the next meeting?", "The next meeting will be on 5 May.", False),
        ("Where will next year's regatta be held?", "This year's regatta will be held off Gull Point.", True),
        ("Where is the upcoming summit?", "The following summit meets in Lyon.", False),
        ("When does the council meet next?", "The council will meet again on 5 May.", False),
        ("What is next to the museum?", "A cafe stands next to the museum.", False),
        ("Who is next in line for the throne?", "Her son Edward was heir.", False),
        ("Where was last year's summit held?", "This year's summit will take place in Lisbon.", True),
        ("Where was last year's summit held?", "Last year's summit was held in Porto.", False),
        ("Where was last year's summit held?", "The summit was held in Porto.", False),
        ("When does this season's series start?", "Last season's series lasted 28 weeks.", True),
        ("When does this season's series start?", "The series starts on 4 April.", False),
        ("Who won the previous race?", "The race this year was won by Kai.", True),
        ("Who won the race?", "Last year's race was won by Kai.", False),
    ],
)
def test_a_question_about_one_occasion_is_not_answered_by_evidence_about_another(
    question: str, evidence: str, other: bool
) -> None:
    assert other_occasion(question, evidence) is other
