"""The generator's rules that need no model: citation markers, names, the per-server and per-member quota, the
settings' checks, and how a checked draft is composed into the answer."""

from __future__ import annotations

import numpy as np
import pytest

from bot.generator import Quota, compose, prompt
from bot.grounding import REFUSAL, check, citations, names
from bot.history import Turn
from bot.replies import Answer, Citation
from bot.settings import SettingsError, load_settings

PASSAGES = [
    "The league's head coach is Maria Lindqvist. She replaced Henrik Dahl after eleven years.",
    "Twelve clubs race this season, from Bergen to Stockholm.",
]


def same(texts: list[str]) -> np.ndarray:
    """An embedding under which every text is the same: the support test always passes, the others decide."""
    return np.ones((len(texts), 2)) / np.sqrt(2)


def test_citation_markers_are_read_in_every_usual_form() -> None:
    assert citations("It rained [1].") == (1,)
    assert citations("Both [2][1] and [2, 3] and [4; 5].") == (2, 1, 3, 4, 5)
    assert citations("No marker.") == ()


def test_names_are_the_capitalised_words_after_the_first() -> None:
    assert names("The coach of Oslo's club is Erik Solberg.") == ["Oslo", "Erik", "Solberg"]


def test_each_unsupported_sentence_is_dropped_with_its_reason() -> None:
    draft = (
        "Maria Lindqvist is the head coach [1]. She replaced Henrik Dahl after 12 years [1]. "
        "Twelve clubs race [3]. The final is in Oslo [2]. The league is old. Twelve clubs race this season [2]."
    )
    checked = check(draft, PASSAGES, same)
    assert [k.text for k in checked.kept] == ["Maria Lindqvist is the head coach.", "Twelve clubs race this season."]
    assert [d.reason for d in checked.dropped] == [
        "the number 12 is not in [1]",
        "cites [3], a passage it was not given",
        "“Oslo” is not in [2]",
        "cites no passage",
    ]


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before() -> None:
    checked = check("Maria Lindqvist coaches. [1] Twelve clubs race. [2]", PASSAGES, same)
    assert [(k.text, k.citations) for k in checked.kept] == [
        ("Maria Lindqvist coaches.", (1,)),
        ("Twelve clubs race.", (2,)),
    ]


def test_the_refusal_phrase_is_a_refusal() -> None:
    assert check(f"Sorry. {REFUSAL}", PASSAGES, same).refused


def test_a_checked_draft_is_renumbered_in_order_of_first_use() -> None:
    read = [Citation(n, f"d{n}.txt", f"Doc {n}", n, text, 1.0) for n, text in enumerate(PASSAGES, 1)]
    extractive = Answer("Who?", "Maria Lindqvist [1]", False, read[:1], "Maria Lindqvist", passages=read)
    checked = check("Twelve clubs race [2]. Maria Lindqvist is the coach [1][2]. It is 13 [2].", PASSAGES, same)
    answer = compose(extractive, checked, {"generate": 1.0})
    assert answer.generated and answer.short_answer is None and answer.answer_type == "evidence"
    assert answer.text == "Twelve clubs race. [1] Maria Lindqvist is the coach. [2][1]"
    assert [(c.n, c.document) for c in answer.citations] == [(1, "d2.txt"), (2, "d1.txt")]
    assert [d.reason for d in answer.dropped] == ["the number 13 is not in [2]"]
    nothing = compose(extractive, check("Nothing cited.", PASSAGES, same), {})
    assert not nothing.generated and nothing.text == extractive.text and len(nothing.dropped) == 1


def test_the_prompt_numbers_the_passages_and_carries_the_conversation_without_ids() -> None:
    read = [Citation(1, "d.txt", "Doc", 3, PASSAGES[0], 1.0)]
    messages = prompt("And before her?", [Turn("Who coaches?", "Maria Lindqvist")], read)
    assert [m["role"] for m in messages] == ["system", "user"] and REFUSAL in messages[0]["content"]
    user = messages[1]["content"]
    assert f"[1] (Doc, ¶3)\n{PASSAGES[0]}" in user and "Q: Who coaches?\nA: Maria Lindqvist" in user
    assert user.endswith("Question: And before her?")


def test_the_quota_counts_each_server_and_each_member() -> None:
    quota = Quota(2)
    assert quota.take(1, 10) and quota.take(1, 11)
    assert not quota.take(1, 12), "the server's two are used"
    assert quota.take(2, 10) and not quota.take(3, 10), "the member's two are used"
    assert quota.take(None, 20) and quota.take(None, 21), "DMs count per member only"
    expired = Quota(1, window=0.0)
    assert expired.take(1, 1) and expired.take(1, 1)


def test_generator_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="GENERATOR_URL needs GENERATOR_MODEL"):
        load_settings(generator_url="http://localhost:11434/v1", _env_file=None)
    with pytest.raises(SettingsError, match="would travel in clear"):
        load_settings(
            generator_url="http://10.0.0.5:8080/v1", generator_model="m", generator_api_key="k", _env_file=None
        )
    with pytest.raises(SettingsError, match="OpenAI-compatible API"):
        load_settings(generator_url="localhost:11434", generator_model="m", _env_file=None)
    settings = load_settings(
        generator_url="http://127.0.0.1:8080/v1/", generator_model="m", generator_api_key="k", _env_file=None
    )
    assert settings.generator_url == "http://127.0.0.1:8080/v1" and "k" not in repr(settings.generator_api_key)
    assert load_settings(generator_url="", _env_file=None).generator_url is None
