"""Yes/no questions made from SQuAD's wh-questions (training/yes_no.py): grammatical where a rule applies, none
where the value asked about would be the subject."""

from __future__ import annotations

import random

import pytest

from training.yes_no import convert, made_from, other_value, value_pool


@pytest.mark.parametrize(
    ("question", "value", "made"),
    [
        ("Where was the assembly held?", "Busan", "Was the assembly held in Busan?"),
        ("When did the Normans conquer England?", "1066", "Did the Normans conquer England in 1066?"),
        ("When was movable type invented?", "in the 12th century", "Was movable type invented in the 12th century?"),
        ("In what year was Zenger tried?", "1735", "Was Zenger tried in 1735?"),
        ("On what date was Spectre shown?", "26 October", "Was Spectre shown on 26 October?"),
        ("Who was Ayurbarwada's son?", "Gegeen Khan", "Was Ayurbarwada's son Gegeen Khan?"),
        ("Who founded the club?", "Ann Lee", "Was it Ann Lee who founded the club?"),
        ("What did Vogue request?", "natural pictures", "Did Vogue request natural pictures?"),
        ("How many quilts did they send?", "2,500", "Did they send 2,500 quilts?"),
        ("how many quilts did they send", "2,500 quilts", "Did they send 2,500 quilts?"),
    ],
)
def test_a_wh_question_becomes_the_yes_no_question_about_a_value(question: str, value: str, made: str) -> None:
    converted = convert(question, value)
    assert converted is not None and converted[0] == made


@pytest.mark.parametrize(
    "question", ["Who was elected president?", "How many homes had been rebuilt?", "Why did the war start?"]
)
def test_no_question_is_made_where_no_rule_applies(question: str) -> None:
    assert convert(question, "X") is None


def test_the_other_value_is_of_the_same_sort_and_not_the_answer() -> None:
    article = {
        "paragraphs": [
            {
                "qas": [
                    {"question": "Where was it held?", "answers": [{"text": "Seoul"}]},
                    {"question": "Where did they meet?", "answers": [{"text": "Busan"}]},
                    {"question": "When was it held?", "answers": [{"text": "2024"}]},
                ]
            }
        ]
    }
    pool = value_pool(article)
    assert pool == {"where": ["Seoul", "Busan"], "when": ["2024"]}
    assert other_value("Seoul", "where", pool, random.Random(0)) == "Busan"
    assert other_value("2024", "when", pool, random.Random(0)) is None


def test_a_made_question_asks_about_the_answer_or_another_value_of_its_sort() -> None:
    pool = {"where": ["Seoul", "Busan"]}
    made = {made_from("Where was it held?", [{"text": "Seoul"}], pool, random.Random(seed)) for seed in range(20)}
    assert made == {("Was it held in Seoul?", True), ("Was it held in Busan?", False)}
    assert made_from("Where was it held?", [], pool, random.Random(0)) is None
    assert made_from("Who was elected mayor?", [{"text": "Ann"}], pool, random.Random(0)) is None
