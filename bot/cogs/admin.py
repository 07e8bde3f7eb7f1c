"""Administration, for admins only: `/rebuild` re-reads the corpus and swaps in a new index; `/stats` shows
what members asked, how it went and what the article should say. Who counts as an admin is decided here, for
every admin command.

The build runs in a worker thread, so questions keep being answered from the old index meanwhile; a failed
build leaves the old index in service and reports why.
"""

from __future__ import annotations

import asyncio
import io
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.engine import KNOWN_ERRORS, BuildInProgress, Engine
from bot.questionlog import QuestionLog
from bot.render import plain
from bot.settings import Settings
from bot.stats import chart_png, summary

log = logging.getLogger(__name__)

REBUILD_RUNNING = "A rebuild is already running; I'll keep answering from the current index until it's done."
CHART = "questions-per-day.png"


class AdminCog(commands.Cog):
    """Index maintenance, restricted to administrators."""

    def __init__(self, engine: Engine, settings: Settings, questions: QuestionLog | None) -> None:
        self.engine = engine
        self.settings = settings
        self.questions = questions

    @app_commands.command(name="rebuild", description="Re-read the corpus and rebuild the index (admins only)")
    @app_commands.default_permissions(manage_guild=True)
    async def rebuild(self, interaction: discord.Interaction) -> None:
        if await refused(interaction, self.settings, "rebuild the index"):
            return
        if self.engine.rebuilding:
            await interaction.response.send_message(REBUILD_RUNNING, ephemeral=True)
            return
        await interaction.response.send_message("Rebuilding the index…", ephemeral=True)
        await interaction.edit_original_response(content=plain(await self._rebuild(interaction.user)))

    @app_commands.command(name="stats", description="What members asked, votes and unanswered questions (admins only)")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(self, interaction: discord.Interaction) -> None:
        if await refused(interaction, self.settings, "see the stats"):
            return
        if self.questions is None:
            await interaction.response.send_message(
                "The question log is off (LOG_QUESTIONS=false, or its database could not be opened).", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        text, png = await asyncio.to_thread(_report, self.questions)
        chart = discord.File(io.BytesIO(png), filename=CHART)
        await interaction.followup.send(plain(text), file=chart, ephemeral=True)

    async def _rebuild(self, user: discord.abc.User) -> str:
        log.info("rebuild requested by user %s", user.id)
        try:
            report = await asyncio.to_thread(self.engine.rebuild)
        except BuildInProgress:
            return REBUILD_RUNNING
        except KNOWN_ERRORS as exc:
            log.warning("rebuild failed: %s", exc)
            return f"Rebuild failed, still answering from the previous index: {exc}"
        state = "Index already up to date" if report.unchanged else "Index rebuilt"
        return f"{state}: {report.documents} documents, {report.passages} passages in {report.seconds:.1f} s."


async def refused(interaction: discord.Interaction, settings: Settings, action: str) -> bool:
    """Tell a member who is not an admin, privately, that only administrators can do this; True if so."""
    if is_admin(interaction.user, settings):
        return False
    await interaction.response.send_message(f"Only server administrators can {action}.", ephemeral=True)
    return True


def is_admin(user: discord.User | discord.Member, settings: Settings) -> bool:
    """Administrator or Manage Server in this guild, or listed in ADMIN_USER_IDS / ADMIN_ROLE_IDS."""
    if user.id in settings.admin_user_ids:
        return True
    if not isinstance(user, discord.Member):
        return False
    permissions = user.guild_permissions
    roles = {role.id for role in user.roles}
    return permissions.administrator or permissions.manage_guild or bool(roles & set(settings.admin_role_ids))


def _report(questions: QuestionLog) -> tuple[str, bytes]:
    """The last 7 days in one line, the last 30 in full, and the 30-day chart."""
    week, month = questions.stats(7), questions.stats(30)
    return summary(week).splitlines()[0] + "\n" + summary(month), chart_png(month)
