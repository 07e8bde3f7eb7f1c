"""👍/👎 under every answer: persistent buttons (they keep working after a restart, since discord.py matches their
`custom_id` to the answer's id in the question log) and an optional "What was wrong?" box after a 👎.

A member's vote is stored in the question log; a second click changes it. Every click is acknowledged ephemerally.
Comment boxes are bounded: one per answer and member (discord.py holds open boxes by `custom_id`, so two members'
boxes on one answer must not share one), a member's new box replacing their earlier one, each forgotten when
submitted or COMMENT_BOX_SECONDS after it opened (a dismissed box says nothing), all closed with the bot.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

from bot.questionlog import COMMENT_CHARS, QuestionLog

log = logging.getLogger(__name__)

THANKS = {True: "Thanks! Your 👍 is recorded.", False: "Thanks! Your 👎 is recorded."}
GONE = "This answer is no longer in the question log, so the vote was not recorded."
COMMENT_BOX_SECONDS = 600.0


def vote_view(question_id: int) -> discord.ui.View:
    """The two buttons under an answer logged as `question_id`."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(True, question_id))
    view.add_item(VoteButton(False, question_id))
    return view


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"vote:(?P<way>up|down):(?P<question>[0-9]+)"):
    """A 👍 or 👎 button; its custom_id names the vote and the logged question, so it survives restarts."""

    def __init__(self, up: bool, question_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                emoji="👍" if up else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"vote:{'up' if up else 'down'}:{question_id}",
            )
        )
        self.up = up
        self.question_id = question_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VoteButton:
        return cls(match["way"] == "up", int(match["question"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        questions = _questions(interaction.client)
        recorded = questions is not None and await asyncio.to_thread(
            questions.vote, self.question_id, interaction.user.id, self.up
        )
        if recorded and not self.up and questions is not None:
            box = _boxes(interaction.client).open(questions, self.question_id, interaction.user.id)
            await interaction.response.send_modal(box)
        else:
            await interaction.response.send_message(THANKS[self.up] if recorded else GONE, ephemeral=True)


class CommentBoxes:
    """The open "What was wrong?" boxes, at most one per (answer, member)."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, int], WhatWasWrong] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, questions: QuestionLog, question_id: int, user_id: int) -> WhatWasWrong:
        """A new box for a member's comment on an answer; their earlier box there (dismissed: Discord shows one box
        at a time) stops listening first, so that its timeout cannot close the new one."""
        if (earlier := self._open.get((question_id, user_id))) is not None:
            earlier.stop()
        box = WhatWasWrong(questions, question_id, user_id, self)
        self._open[question_id, user_id] = box
        return box

    def forget(self, box: WhatWasWrong) -> None:
        """Drop a box that was submitted, stopped or timed out (unless a newer box took its place)."""
        if self._open.get((box.question_id, box.user_id)) is box:
            del self._open[box.question_id, box.user_id]

    def close_all(self) -> None:
        """Stop every open box (the bot is closing): no timeout is left running."""
        for box in list(self._open.values()):
            box.stop()


class WhatWasWrong(discord.ui.Modal, title="What was wrong?"):
    """The optional one-line comment after a 👎, from one member on one answer (the log cuts it to COMMENT_CHARS
    whatever a client sends)."""

    comment: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="What was wrong? (optional)", required=False, max_length=COMMENT_CHARS
    )

    def __init__(self, questions: QuestionLog, question_id: int, user_id: int, boxes: CommentBoxes) -> None:
        super().__init__(custom_id=f"vote-comment:{question_id}:{user_id}", timeout=COMMENT_BOX_SECONDS)
        self.questions = questions
        self.question_id = question_id
        self.user_id = user_id
        self._boxes = boxes

    async def on_submit(self, interaction: discord.Interaction) -> None:
        text = self.comment.value.strip()
        if text:
            await asyncio.to_thread(self.questions.vote, self.question_id, interaction.user.id, False, text)
        await interaction.response.send_message(THANKS[False], ephemeral=True)

    def stop(self) -> None:
        """Stop listening (after a submit, or when replaced or closed) and leave the open boxes."""
        super().stop()
        self._boxes.forget(self)

    async def on_timeout(self) -> None:
        self._boxes.forget(self)


def _questions(client: discord.Client) -> QuestionLog | None:
    return getattr(client, "questions", None)


def _boxes(client: discord.Client) -> CommentBoxes:
    """The open comment boxes the article bot keeps."""
    boxes: CommentBoxes = client.comment_boxes  # type: ignore[attr-defined]
    return boxes
