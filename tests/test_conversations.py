"""Follow-up questions answered with their conversation's history, by the real engine and reader; and the memory
that keeps each conversation's turns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cases import assert_abstains, assert_answers

from bot.answer import Answer
from bot.engine import Engine
from bot.history import Conversations, Turn, follow_up_query

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


def test_a_follow_up_is_searched_with_the_answer_it_follows() -> None:
    history = [Turn("Who gave the keynote address?", "Rubinstein")]
    assert follow_up_query("Where is she based?", history) == "Rubinstein Where is she based?"
    assert follow_up_query("And when?", [Turn("Where was it held?")]) == "And when?", "an abstention adds nothing"
    assert follow_up_query("Who founded WeGO?", []) == "Who founded WeGO?"


def test_conversations_keep_the_last_turns_apart_and_forget_idle_ones() -> None:
    now = [0.0]
    memory = Conversations(turns=2, ttl_seconds=60, clock=lambda: now[0])
    for n in range(3):
        memory.record("thread", Turn(f"q{n}"))
    memory.record("dm", Turn("other"))
    assert [t.question for t in memory.history("thread")] == ["q1", "q2"]
    assert memory.history("dm") == (Turn("other"),) and memory.history("new") == ()
    now[0] = 50.0
    memory.record("dm", Turn("again"))
    now[0] = 70.0
    assert memory.history("thread") == () and len(memory.history("dm")) == 2 and len(memory) == 1


def test_no_history_is_kept_when_turns_is_zero() -> None:
    memory = Conversations(turns=0, ttl_seconds=60)
    memory.record("thread", Turn("q"))
    assert memory.history("thread") == ()


def _is_right(case: dict, answer: Answer) -> bool:
    try:
        assert_abstains(answer) if case.get("abstain") else assert_answers(case, answer)
    except AssertionError:
        return False
    return True
