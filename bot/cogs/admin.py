"""Administration, for admins only: `/rebuild` re-reads the corpus and swaps in a new index; `/stats` shows
what members asked, how it went and what the article should say; `/forget` deletes everything a server added.
Who counts as an admin is decided here, once: `admin_only` is the check every admin command carries, and the bot's
error handler answers its refusal.

What an admin acts on is where the command is used: in a server, that server's own documents, index and
questions; in a DM (only bot owners, ADMIN_USER_IDS, are admins there), the shared base and every server's
statistics.

The build runs in a worker thread, so questions keep being answered from the old index meanwhile; a failed
build leaves the old index in service and reports why.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import KNOWN_ERRORS
from bot.questionlog import LogError, QuestionLog
from bot.render import plain
from bot.settings import Settings
from bot.stats import chart_png, summary
from index.folder import BuildInProgress
from index.library import Library
from index.manager import IndexManager

log = logging.getLogger(__name__)
Command = TypeVar("Command")

ADMINS = "Members with Administrator or Manage Server (and configured admin users or roles)"  # is_admin, in words
NO_DOCUMENTS = "This server has no documents of its own yet: add some with `/add`."
REBUILD_RUNNING = "A rebuild is already running; I'll keep answering from the current index until it's done."
CHART = "questions-per-day.png"


class NotAdmin(app_commands.CheckFailure):
    """A member who is not an admin used an admin command; the message says what only admins can do."""


def admin_only(action: str) -> Callable[[Command], Command]:
    """The admin rule for an app command: offered by default only to members with Manage Server (a server can
    change that in its settings, so it is a hint) and checked with `is_admin` on every use."""

    def predicate(interaction: discord.Interaction) -> bool:
        settings: Settings = interaction.client.settings  # type: ignore[attr-defined]  # the bot's, see discord_bot
        if is_admin(interaction.user, settings):
            return True
        raise NotAdmin(f"Only server administrators can {action}.")

    def decorator(command: Command) -> Command:
        return app_commands.default_permissions(manage_guild=True)(app_commands.check(predicate)(command))

    return decorator


def is_admin(user: discord.User | discord.Member, settings: Settings) -> bool:
    """Administrator or Manage Server in this guild, or listed in ADMIN_USER_IDS / ADMIN_ROLE_IDS."""
    if user.id in settings.admin_user_ids:
        return True
    if not isinstance(user, discord.Member):
        return False
    permissions = user.guild_permissions
    roles = {role.id for role in user.roles}
    return permissions.administrator or permissions.manage_guild or bool(roles & set(settings.admin_role_ids))


class AdminCog(commands.Cog):
    """Index maintenance, restricted to administrators."""

    def __init__(self, library: Library, questions: QuestionLog | None) -> None:
        self.library = library
        self.questions = questions

    @app_commands.command(name="rebuild", description="Re-read the documents and rebuild the index (admins only)")
    @admin_only("rebuild the index")
    async def rebuild(self, interaction: discord.Interaction) -> None:
        log.info("rebuild requested by user %s in %s", interaction.user.id, interaction.guild_id or "a DM")
        indexes = self.library.manager(interaction.guild_id)
        if indexes.store is None:
            await interaction.response.send_message(NO_DOCUMENTS, ephemeral=True)
            return
        await change_index(interaction, indexes, "Rebuilding the index…", lambda: asyncio.to_thread(_rebuild, indexes))

    @app_commands.command(name="forget", description="Delete this server's documents and logged questions (admins)")
    @app_commands.describe(confirm="True to delete everything this server added and asked; it cannot be undone")
    @app_commands.guild_only()
    @admin_only("make the bot forget this server")
    async def forget(self, interaction: discord.Interaction, confirm: bool) -> None:
        if not confirm or interaction.guild_id is None:
            await interaction.response.send_message("Nothing deleted (confirm was False).", ephemeral=True)
            return
        log.info("forget requested by user %s in %s", interaction.user.id, interaction.guild_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            outcome = await asyncio.to_thread(forget_server, self.library, self.questions, interaction.guild_id)
        except BuildInProgress as exc:
            outcome = f"Nothing deleted: {exc}."
        await interaction.followup.send(outcome, ephemeral=True)

    @app_commands.command(name="stats", description="What members asked, votes and unanswered questions (admins only)")
    @admin_only("see the stats")
    async def stats(self, interaction: discord.Interaction) -> None:
        if self.questions is None:
            await interaction.response.send_message(
                "The question log is off (LOG_QUESTIONS=false, or its database could not be opened).", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        text, png = await asyncio.to_thread(_report, self.questions, interaction.guild_id)
        chart = discord.File(io.BytesIO(png), filename=CHART)
        await interaction.followup.send(plain(text), file=chart, ephemeral=True)


def forget_server(library: Library, questions: QuestionLog | None, guild_id: int) -> str:
    """Delete a server's documents, index and logged questions (when it asks, or when the bot leaves it)."""
    had_documents = library.forget(guild_id)
    documents = "its documents and index" if had_documents else "no documents of its own"
    try:
        forgotten = questions.forget(guild_id) if questions is not None else 0
    except LogError as exc:
        log.error("server %s: %s", guild_id, exc)
        return f"Deleted {documents}, but not its logged questions: the question log failed; try again later."
    return f"Deleted {documents} and {forgotten} logged questions."


def _rebuild(indexes: IndexManager) -> str:
    report = indexes.rebuild()
    state = "Index already up to date" if report.unchanged else "Index rebuilt"
    return f"{state}: {report.documents} documents, {report.passages} passages in {report.seconds:.1f} s."


async def change_index(
    interaction: discord.Interaction, indexes: IndexManager, progress: str, change: Callable[[], Awaitable[str]]
) -> None:
    """Acknowledge at once (a change takes longer than Discord's 3 s), then replace that with the outcome; one
    change at a time, and a failed one says that nothing changed."""
    if indexes.rebuilding:
        await interaction.response.send_message(REBUILD_RUNNING, ephemeral=True)
        return
    await interaction.response.send_message(plain(progress), ephemeral=True)
    try:
        outcome = await change()
    except BuildInProgress:
        outcome = REBUILD_RUNNING
    except KNOWN_ERRORS as exc:
        log.warning("index change refused: %s", exc)
        outcome = f"Nothing changed: {exc}"
    await interaction.edit_original_response(content=plain(outcome))


def _report(questions: QuestionLog, guild_id: int | None) -> tuple[str, bytes]:
    """The last 7 days in one line, the last 30 in full, and the 30-day chart: of this server, or in a bot
    owner's DM of all."""
    week, month = questions.stats(7, guild_id), questions.stats(30, guild_id)
    return summary(week).splitlines()[0] + "\n" + summary(month), chart_png(month)
