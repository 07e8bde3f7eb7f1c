"""Conversations: the recent turns a follow-up question is read with ("And where is it?" after "Who heads WeGO's
secretariat?").

A follow-up is searched for together with the short answer the previous turn gave, and it is answered through the
same reader, calibrator and abstention as any question; an answer already given yields to a new one. Turns are kept
per conversation (a Discord thread, a DM channel, a terminal session), bounded in number and expiring.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from bot.replies import Answer


@dataclass(frozen=True)
class Turn:
    """A question asked in a conversation and the short answer it got (None: abstained, yes/no, no reader)."""

    question: str
    short_answer: str | None = None

    @classmethod
    def of(cls, answer: Answer) -> Turn:
        return cls(answer.question, answer.short_answer)


def follow_up_query(question: str, history: Sequence[Turn]) -> str:
    """What retrieval searches for: the question after the last short answer given. A follow-up's pronoun most
    often points at the answer just given; the last question itself would drag a change of topic back to it."""
    last = history[-1].short_answer if history else None
    return f"{last} {question}" if last else question


def given_answers(history: Sequence[Turn]) -> tuple[str, ...]:
    """The short answers a conversation has already given: a follow-up asks for something new."""
    return tuple(t.short_answer for t in history if t.short_answer)


class Conversations:
    """The last `turns` turns of each conversation, forgotten `ttl_seconds` after its last turn.

    Thread-safe: the Discord front end records turns from worker threads.
    """

    def __init__(self, turns: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.turns = turns
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._conversations: OrderedDict[Hashable, tuple[float, deque[Turn]]] = OrderedDict()

    def history(self, key: Hashable) -> tuple[Turn, ...]:
        """The conversation's recent turns, oldest first; empty when it is new or expired."""
        with self._lock:
            self._expire()
            entry = self._conversations.get(key)
            return tuple(entry[1]) if entry else ()

    def record(self, key: Hashable, turn: Turn) -> None:
        """Add a turn to a conversation (starting it if needed) and restart its clock."""
        if self.turns == 0:
            return
        with self._lock:
            self._expire()
            _, turns = self._conversations.pop(key, (0.0, deque(maxlen=self.turns)))
            turns.append(turn)
            self._conversations[key] = (self._clock(), turns)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._conversations)

    def _expire(self) -> None:
        """Forget conversations idle for longer than the TTL (the oldest are first in the ordered dict)."""
        deadline = self._clock() - self.ttl_seconds
        while self._conversations and next(iter(self._conversations.values()))[0] < deadline:
            self._conversations.popitem(last=False)
