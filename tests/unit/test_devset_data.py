"""The development set is what it claims to be: three articles of different genres, each with at least 30 questions
of every type, every fact quoted exactly from the paragraphs it names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from index.documents import parse_document

DEVSET = Path(__file__).parents[1] / "devset"
SETS = sorted(DEVSET.glob("*.yaml"))
TYPES = {
    "span",
    "yes_no",
    "describe",
    "list",
    "number_words",
    "keyword",
    "reference",
    "follow_up",
    "unanswerable_decoy",
    "off_topic",
}


def test_three_articles_of_different_genres() -> None:
    assert {path.stem for path in SETS} == {"newsletter", "release", "minutes"}


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_every_type_is_asked_and_every_fact_is_quoted_from_its_paragraphs(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    article = DEVSET / data["article"]
    document = parse_document(article.read_text(encoding="utf-8"), article, article.name)
    paragraphs = {p.number: " ".join(document.paragraph_text(p).split()) for p in document.paragraphs}
    questions = data["questions"]
    assert len(questions) >= 30 and set(Counter(q["type"] for q in questions)) == TYPES
    for case in questions:
        if case["type"] in {"unanswerable_decoy", "off_topic"}:
            assert "fact" not in case, case
            continue
        facts = case["fact"] if isinstance(case["fact"], list) else [case["fact"]]
        for fact in facts:
            where = {n for n, text in paragraphs.items() if fact.lower() in text.lower()}
            assert where and where <= set(case["paragraphs"]), (case["question"], fact, where)
