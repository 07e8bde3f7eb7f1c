"""👍/👎 under every answer: persistent buttons (they keep working after a restart, since discord.py matches their
`custom_id` to the answer's id in the question log) and an optional "What was wrong?" box after a 👎.

A member's vote is stored in the question log; a second click changes it. Every click is acknowledged ephemerally.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

from bot.questionlog import QuestionLog

log = logging.getLogger(__name__)

THANKS = {True: "Thanks! Your 👍 is recorded.", False: "Thanks! Your 👎 is recorded."}
GONE = "This answer is no longer in the question log, so the vote was not recorded."
COMMENT_LIMIT = 300


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
            await interaction.response.send_modal(WhatWasWrong(questions, self.question_id))
        else:
            await interaction.response.send_message(THANKS[self.up] if recorded else GONE, ephemeral=True)


class WhatWasWrong(discord.ui.Modal, title="What was wrong?"):
    """The optional one-line comment after a 👎."""

    comment: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="What was wrong? (optional)", required=False, max_length=COMMENT_LIMIT
    )

    def __init__(self, questions: QuestionLog, question_id: int) -> None:
        super().__init__(custom_id=f"vote-comment:{question_id}")
        self.questions = questions
        self.question_id = question_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        text = self.comment.value.strip()
        if text:
            await asyncio.to_thread(self.questions.vote, self.question_id, interaction.user.id, False, text)
        await interaction.response.send_message(THANKS[False], ephemeral=True)


def _questions(client: discord.Client) -> QuestionLog | None:
    return getattr(client, "questions", None)
