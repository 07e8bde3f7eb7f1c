"""Follow-up questions answered with their conversation's history, by the real engine and reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cases import assert_abstains, assert_answers

from bot.engine import Engine
from bot.history import Turn
from bot.replies import Answer

CONVERSATIONS = yaml.safe_load((Path(__file__).parent / "conversations.yaml").read_text(encoding="utf-8"))
CHATS = CONVERSATIONS["conversations"]


def replay(engine: Engine, turns: list[dict], history: bool = True) -> list[Answer]:
    """Ask each turn after the ones before it, as one conversation (or each alone)."""
    answers: list[Answer] = []
    for case in turns:
        answers.append(engine.ask(case["question"], [Turn.of(a) for a in answers] if history else ()))
    return answers


def _key(chat: dict, case: dict) -> str:
    return f"{chat['article']}: {case['question']}"


def turns() -> list:
    """Every turn of every conversation; the engine's known misses are expected to fail (strictly)."""
    known = set(CONVERSATIONS["misses"])
    return [
        pytest.param(
            n,
            t,
            id=f"{chat['article']} {n}.{t}: {case['question']}",
            marks=[pytest.mark.xfail(strict=True, reason="a known miss")] if _key(chat, case) in known else [],
        )
        for n, chat in enumerate(CHATS)
        for t, case in enumerate(chat["turns"])
        if t > 0
    ]


@pytest.mark.parametrize(("chat", "turn"), turns())
def test_a_later_turn_is_answered_in_context(engines: dict, chat: int, turn: int) -> None:
    conversation = CHATS[chat]
    case = conversation["turns"][turn]
    answer = replay(engines[conversation["article"]], conversation["turns"][: turn + 1])[-1]
    if case.get("abstain"):
        assert_abstains(answer)
    else:
        assert_answers(case, answer)


def test_history_answers_follow_ups_that_alone_are_refused_or_wrong(engines: dict) -> None:
    def right(chat: dict, history: bool) -> int:
        answers = replay(engines[chat["article"]], chat["turns"], history)
        return sum(
            case.get("follow_up", False) and _is_right(case, answer)
            for case, answer in zip(chat["turns"], answers, strict=True)
        )

    with_history, alone = (sum(right(chat, history) for chat in CHATS) for history in (True, False))
    assert with_history >= alone + 5, (with_history, alone)


def test_the_set_has_enough_conversations_follow_ups_and_changes_of_topic() -> None:
    later = [case for chat in CHATS for case in chat["turns"][1:]]
    assert len(CHATS) >= 15 and all(2 <= len(chat["turns"]) <= 3 for chat in CHATS)
    assert sum("follow_up" in c for c in later) >= 15 and sum("new_topic" in c for c in later) >= 5
    assert set(CONVERSATIONS["misses"]) <= {_key(chat, c) for chat in CHATS for c in chat["turns"][1:]}
    assert len(CONVERSATIONS["misses"]) < len(later) / 2


def _is_right(case: dict, answer: Answer) -> bool:
    try:
        assert_abstains(answer) if case.get("abstain") else assert_answers(case, answer)
    except AssertionError:
        return False
    return True
