"""Asking: `/ask`, mentioning the bot, ask channels, plus `/sources` and `/help`.

Everything shown comes from the engine and `bot.render`; the engine runs in a worker thread so the event loop
keeps serving other users while a question is embedded and searched.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot.engine import Engine, InvalidQuestion
from bot.render import answer_embed, plain, sources_embed
from bot.settings import Settings

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
APOLOGY = "Sorry, something went wrong while answering. The error has been logged; please try again later."


class Cooldown:
    """Per-user rate limit: how long a user must still wait before asking again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[int, float] = {}

    def retry_after(self, user_id: int) -> float:
        """0 and the ask is recorded, or the seconds left to wait."""
        now = time.monotonic()
        wait = self._last.get(user_id, -self.seconds) + self.seconds - now
        if wait > 0:
            return wait
        self._last[user_id] = now
        return 0.0


class AskCog(commands.Cog):
    """Answers questions wherever they are asked."""

    def __init__(self, bot: commands.Bot, engine: Engine, settings: Settings) -> None:
        self.bot = bot
        self.engine = engine
        self.settings = settings
        self.cooldown = Cooldown(settings.cooldown_seconds)

    @app_commands.command(name="ask", description="Ask a question about the article")
    @app_commands.describe(question="What do you want to know?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if refusal := self._refusal(interaction.user.id, question):
            await interaction.response.send_message(plain(refusal), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        await interaction.response.defer(thinking=True)
        try:
            answer = await asyncio.to_thread(self.engine.ask, question)
        except InvalidQuestion as exc:
            await interaction.followup.send(plain(str(exc)), allowed_mentions=NO_PINGS)
            return
        await interaction.followup.send(embed=answer_embed(answer), allowed_mentions=NO_PINGS)

    @app_commands.command(name="sources", description="List the documents the bot answers from")
    async def sources(self, interaction: discord.Interaction) -> None:
        embed = sources_embed(self.engine.sources())
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_PINGS)

    @app_commands.command(name="help", description="How to ask, what the bot knows and who can rebuild")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(self._help_text(), ephemeral=True, allowed_mentions=NO_PINGS)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        question = self._question_in(message)
        if question is None:
            return
        try:
            await self._answer_message(message, question)
        except Exception:
            log.exception("failed to answer message %s", message.id)
            await message.reply(APOLOGY, mention_author=False, allowed_mentions=NO_PINGS)

    async def _answer_message(self, message: discord.Message, question: str) -> None:
        if refusal := self._refusal(message.author.id, question):
            await message.reply(plain(refusal), mention_author=False, allowed_mentions=NO_PINGS)
            return
        async with message.channel.typing():
            try:
                answer = await asyncio.to_thread(self.engine.ask, question)
            except InvalidQuestion as exc:
                await message.reply(plain(str(exc)), mention_author=False, allowed_mentions=NO_PINGS)
                return
        await message.reply(embed=answer_embed(answer), mention_author=False, allowed_mentions=NO_PINGS)

    def _question_in(self, message: discord.Message) -> str | None:
        """The question a message asks the bot, or None when the message is not for the bot."""
        me = self.bot.user
        if message.author.bot or me is None:
            return None
        if message.guild is None:
            return message.content if self.settings.allow_dms else None
        if me in message.mentions:
            return re.sub(rf"<@!?{me.id}>", " ", message.content)
        if message.channel.id in self.settings.ask_channel_ids:
            return message.content
        return None

    def _refusal(self, user_id: int, question: str) -> str | None:
        """Why a question is not answered right now (input problems are the engine's, rate limits ours)."""
        if not question.strip() or len(" ".join(question.split())) > self.settings.max_question_chars:
            return None  # let the engine word the hint or refusal
        wait = self.cooldown.retry_after(user_id)
        return f"You're asking quickly! Try again in {wait:.0f} s." if wait > 0 else None

    def _help_text(self) -> str:
        titles = ", ".join(f"“{d.title}”" for d in self.engine.sources().documents)
        return plain(
            "Ask with `/ask question:…`, by mentioning me (`@bot who heads the secretariat?`)"
            + (", or in an ask channel" if self.settings.ask_channel_ids else "")
            + f". I answer only from {titles}, quote the passages I used and say so when the article doesn't "
            "answer. `/sources` lists what I know. Members with Administrator or Manage Server (and configured "
            "admin users or roles) can `/rebuild` the index."
        )
