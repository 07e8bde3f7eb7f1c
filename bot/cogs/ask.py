"""Asking: `/ask`, mentioning the bot, ask channels, follow-ups, plus `/sources` and `/help`.

Everything shown comes from the engine and `bot.render`; the engine runs in a worker thread so the event loop
keeps serving other users while a question is embedded and searched. An answer in a server channel starts a thread
(THREADS) where every message is a follow-up; where no thread can be started, replying to an answer follows it up.
A DM channel is one conversation.

Work is bounded for every question: the per-user cooldown comes first (a question refused for being empty or too
long counts against it too, and a flood of messages within one wait gets one reply), and at most
MAX_CONCURRENT_QUESTIONS are answered at once; past that a member is told the bot is busy, nothing queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.admin import ADMINS
from bot.errors import InvalidQuestion
from bot.feedback import vote_view
from bot.history import Conversations, Turn
from bot.questionlog import Origin, QuestionLog
from bot.render import answer_embed, draft_embed, plain, sources_embed, thread_name
from bot.replies import APOLOGY, Answer
from bot.settings import Settings
from index.manager import Sources

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

STORED = (
    " Questions are logged with my answers, their 👍/👎 votes and comments, for the admins' `/stats`; user ids are"
    " stored only as a keyed hash."
)
REMEMBERED_ANSWERS = 10_000  # inline answers whose replies continue a conversation
SETTLE_SECONDS = 10.0  # how long a reply waits for the answer it replies to to be recorded
OWNERS = "The bot's owners (ADMIN_USER_IDS)"  # the admins of a DM: they change the shared documents
BUSY = "I'm answering a lot of questions right now; please try again in a moment."
EDIT_SECONDS = 1.0  # a streamed draft is edited at most this often: Discord's rate for editing a message
Send = Callable[..., Awaitable[discord.Message]]


class Cooldown:
    """Per-user rate limit: how long a user must still wait before asking again. Only users still waiting are
    remembered, so its size is bounded by who asked within the last `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: OrderedDict[int, float] = OrderedDict()  # user -> end of their wait, earliest first
        self._refused: set[int] = set()  # waiting users already told to wait

    def __len__(self) -> int:
        return len(self._until)

    def retry_after(self, user_id: int) -> float:
        """0 and the ask is recorded, or the seconds left to wait (and the user counts as told so)."""
        now = time.monotonic()
        self._forget(now)
        if user_id in self._until:
            self._refused.add(user_id)
            return self._until[user_id] - now
        self._until[user_id] = now + self.seconds
        return 0.0

    def told_to_wait(self, user_id: int) -> bool:
        """Whether a user still waiting was already refused in this wait."""
        self._forget(time.monotonic())
        return user_id in self._refused

    def _forget(self, now: float) -> None:
        """Drop the users whose wait is over (all waits are equally long: the earliest ends first)."""
        while self._until and next(iter(self._until.values())) <= now:
            user_id, _ = self._until.popitem(last=False)
            self._refused.discard(user_id)


class AskCog(commands.Cog):
    """Answers questions wherever they are asked."""

    def __init__(self, bot: commands.Bot, engine: Engine, settings: Settings, questions: QuestionLog | None) -> None:
        self.bot = bot
        self.engine = engine
        self.settings = settings
        self.questions = questions
        self.cooldown = Cooldown(settings.cooldown_seconds)
        self.conversations = Conversations(settings.history_turns, settings.history_ttl_minutes * 60)
        self._answered_in: OrderedDict[int, int] = OrderedDict()  # inline answer message id -> conversation
        self._sending: set[asyncio.Future[None]] = set()  # answers sent but not yet recorded
        self._in_flight = asyncio.Semaphore(settings.max_concurrent_questions)  # questions being answered

    @app_commands.command(name="ask", description="Ask a question about the article")
    @app_commands.describe(question="What do you want to know?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if refusal := self._refusal(interaction.user.id, question, interaction.guild_id):
            await interaction.response.send_message(plain(refusal), ephemeral=True)
            return
        async with self._in_flight:  # a place is free: _refusal saw one and nothing was awaited since
            await interaction.response.defer(thinking=True)
            conversation = await self._conversation_of(interaction.channel, None)
            history = self._history(conversation)
            answer = await self._ask(question, history, interaction.guild_id)
            origin = Origin("discord", interaction.guild_id, interaction.channel_id, interaction.user.id)

            async def send(**content: Any) -> discord.Message:
                return await interaction.followup.send(wait=True, **content)

            async with self._settling():
                answer, sent = await self._deliver(answer, history, origin, send)
                await self._remember(answer, sent, interaction.channel, conversation)

    @app_commands.command(name="sources", description="List the documents the bot answers from")
    async def sources(self, interaction: discord.Interaction) -> None:
        shared, own = self._sources(interaction.guild_id)
        await interaction.response.send_message(embed=sources_embed(shared, own), ephemeral=True)

    @app_commands.command(name="help", description="How to ask, what the bot knows and who can rebuild")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(self._help_text(interaction.guild_id), ephemeral=True)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        question = self._question_in(message)
        if question is None:
            return
        try:
            await self._answer_message(message, question)
        except Exception:
            log.exception("failed to answer message %s", message.id)
            await message.reply(APOLOGY, mention_author=False)

    async def _answer_message(self, message: discord.Message, question: str) -> None:
        if self.cooldown.told_to_wait(message.author.id):
            return  # one reply per wait, however many messages
        guild_id = message.guild.id if message.guild else None
        if refusal := self._refusal(message.author.id, question, guild_id):
            await message.reply(plain(refusal), mention_author=False)
            return
        async with self._in_flight:  # a place is free: _refusal saw one and nothing was awaited since
            reference = message.reference.message_id if message.reference else None
            conversation = await self._conversation_of(message.channel, reference)
            history = self._history(conversation)
            async with message.channel.typing():
                answer = await self._ask(question, history, guild_id)
            origin = Origin("discord", guild_id, message.channel.id, message.author.id)

            async def send(**content: Any) -> discord.Message:
                return await message.reply(mention_author=False, **content)

            async with self._settling():
                answer, sent = await self._deliver(answer, history, origin, send)
                await self._remember(answer, sent, message.channel, conversation)

    async def _deliver(
        self, answer: Answer, history: Sequence[Turn], origin: Origin, send: Send
    ) -> tuple[Answer, discord.Message]:
        """Send the answer, logged, with its vote buttons. With a generator (and within its quota) the model writes
        it first: the draft is shown as it comes, edited at most every EDIT_SECONDS (Discord's edit rate), and
        replaced by the checked answer (or the extractive one, should the model server fail)."""
        generator = self.engine.generator
        draft: discord.Message | None = None
        if generator is not None and not answer.abstained and generator.quota.take(origin.guild_id, origin.user_id):
            shown = -EDIT_SECONDS

            async def show(text: str) -> None:
                nonlocal draft, shown
                if time.monotonic() - shown < EDIT_SECONDS:
                    return
                shown = time.monotonic()
                embed = draft_embed(answer.question, text)
                draft = await send(embed=embed) if draft is None else await draft.edit(embed=embed)

            answer = await generator.write(answer, history, show)
        buttons = await self._log(answer, origin)
        if draft is None:
            return answer, await send(embed=answer_embed(answer), **buttons)
        return answer, await draft.edit(embed=answer_embed(answer), **buttons)

    async def _log(self, answer: Answer, origin: Origin) -> dict:
        """Record the question in the log (in a worker thread); the 👍/👎 buttons for its answer, if it was."""
        if self.questions is None:
            return {}
        logged = await asyncio.to_thread(self.questions.record, answer, origin, answer.latency_ms)
        return {} if logged is None else {"view": vote_view(logged)}

    def _history(self, conversation: int | None) -> Sequence[Turn]:
        """The conversation's earlier turns (none for a new question)."""
        return self.conversations.history(conversation) if conversation is not None else ()

    async def _ask(self, question: str, history: Sequence[Turn], guild_id: int | None) -> Answer:
        """The engine's answer from what this server knows, read with the conversation's earlier turns."""
        return await asyncio.to_thread(self.engine.ask, question, history, guild_id)

    async def _conversation_of(self, channel: object, reference: int | None) -> int | None:
        """The conversation a question continues: the bot's thread or the DM channel it is asked in, or the
        inline answer it replies to; None for a new question in a server channel."""
        me = self.bot.user
        if isinstance(channel, discord.Thread) and me is not None and channel.owner_id == me.id:
            return channel.id
        if isinstance(channel, discord.DMChannel):
            return channel.id
        if reference is None:
            return None
        if reference not in self._answered_in and self._sending:  # the reply may have overtaken its answer's send
            await asyncio.wait(set(self._sending), timeout=SETTLE_SECONDS)
        return self._answered_in.get(reference)

    @contextlib.asynccontextmanager
    async def _settling(self) -> AsyncIterator[None]:
        """Mark an answer as being sent until its turn is recorded, for replies that arrive first."""
        done = asyncio.get_running_loop().create_future()
        self._sending.add(done)
        try:
            yield
        finally:
            self._sending.discard(done)
            done.set_result(None)

    async def _remember(self, answer: Answer, sent: discord.Message, channel: object, conversation: int | None) -> None:
        """Record the turn. A new question's conversation is named after its answer, which then starts a thread
        (a thread started on a message takes the message's id) or else lets replies to it follow it up."""
        if conversation is None:
            self.conversations.record(sent.id, Turn.of(answer))  # before the thread exists: no follow-up is missed
            if await self._start_thread(channel, sent, answer.question) is None:
                self._follow_replies(sent.id, sent.id)
            return
        self.conversations.record(conversation, Turn.of(answer))
        if not isinstance(channel, (discord.Thread, discord.DMChannel)):
            self._follow_replies(sent.id, conversation)

    def _follow_replies(self, answer_id: int, conversation: int) -> None:
        """Let replies to an inline answer continue its conversation (the most recent answers are remembered)."""
        self._answered_in[answer_id] = conversation
        while len(self._answered_in) > REMEMBERED_ANSWERS:
            self._answered_in.popitem(last=False)

    async def _start_thread(self, channel: object, message: discord.Message, question: str) -> discord.Thread | None:
        """A public thread on the answer, named after the question; None where threads are off or not allowed."""
        if not self.settings.threads or not isinstance(channel, discord.TextChannel):
            return None
        if not channel.permissions_for(channel.guild.me).create_public_threads:
            return None
        try:
            return await channel.create_thread(name=thread_name(question), message=message)
        except discord.HTTPException as exc:
            log.warning("could not start a thread on answer %s: %s", message.id, exc)
            return None

    def _question_in(self, message: discord.Message) -> str | None:
        """The question a message asks the bot, or None when the message is not for the bot."""
        me = self.bot.user
        if message.author.bot or me is None:
            return None
        if message.guild is None:
            return message.content if self.settings.allow_dms else None
        question = re.sub(rf"<@!?{me.id}>", " ", message.content)
        if me in message.mentions:
            return question
        if isinstance(message.channel, discord.Thread) and message.channel.owner_id == me.id:
            return question if question.strip() else None  # empty: no Message Content intent, nothing to answer
        if message.channel.id in self.settings.ask_channel_ids:
            return message.content
        return None

    def _refusal(self, user_id: int, question: str, guild_id: int | None) -> str | None:
        """Why a question is not answered now: the rate limit (first, so that refused questions count against it
        too), the engine's word on the question itself, or every place among the questions in flight taken."""
        wait = self.cooldown.retry_after(user_id)
        if wait > 0:
            return f"You're asking quickly! Try again in {wait:.0f} s."
        try:
            self.engine.check(question, guild_id)
        except InvalidQuestion as exc:
            return str(exc)
        return BUSY if self._in_flight.locked() else None

    def _sources(self, guild_id: int | None) -> tuple[Sources | None, Sources | None]:
        """What a question here is answered from: the shared documents (None when this server does not share
        them) and the server's own (None outside a server)."""
        library = self.engine.library
        shared = library.base.sources() if guild_id is None or library.shared_base else None
        own = library.sources(guild_id) if guild_id is not None else None
        return shared, own

    def _help_text(self, guild_id: int | None) -> str:
        documents = [d for sources in self._sources(guild_id) if sources for d in sources.documents]
        titles = ", ".join(f"“{d.title}”" for d in documents) or "the documents this server's admins add"
        return plain(
            "Ask with `/ask question:…`, by mentioning me (`@bot who heads the secretariat?`)"
            + (", or in an ask channel" if self.settings.ask_channel_ids else "")
            + f". I answer only from {titles}, quote the passages I used and say so when the article doesn't "
            "answer. Follow up "
            + ("in the thread under my answer" if self.settings.threads else "by replying to my answer")
            + f". `/sources` lists what I know. {ADMINS if guild_id else OWNERS} can `/add` a web page or file to "
            + ("this server's documents" if guild_id else "the shared documents")
            + ", `/remove` one, `/rebuild` the index, see `/stats`"
            + (" and `/forget` everything the server added." if guild_id else ".")
            + (STORED if self.questions is not None else "")
        )
