"""Changing what the bot knows, for admins only: `/add url:` fetches a web page, `/add file:` takes an attached
.txt, .md, .html or .pdf, `/remove document:` takes a document out (with autocomplete).

Each change runs in a worker thread and ends with the new index swapped in; questions are answered from the old
one meanwhile. Replies are ephemeral: one line saying what was added or removed, or why nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.admin import REBUILD_RUNNING, refused
from bot.engine import KNOWN_ERRORS, BuildInProgress, Change, DocumentError, Engine
from bot.render import plain
from bot.settings import Settings

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25  # choices Discord accepts in one autocomplete answer


class DocumentsCog(commands.Cog):
    """`/add` and `/remove`, restricted to administrators like `/rebuild`."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @app_commands.command(name="add", description="Add a web page or a file to what the bot knows (admins only)")
    @app_commands.describe(url="a web page, PDF or text file to fetch", file="a .txt, .md, .html or .pdf file")
    @app_commands.default_permissions(manage_guild=True)
    async def add(
        self, interaction: discord.Interaction, url: str | None = None, file: discord.Attachment | None = None
    ) -> None:
        if await refused(interaction, self.settings, "add documents"):
            return
        if (url is None) == (file is None):
            await interaction.response.send_message("Give either a `url` or a `file`, not both.", ephemeral=True)
            return
        try:
            if file is not None:
                self.engine.check_size(file.filename, file.size)  # before downloading it
        except DocumentError as exc:
            await interaction.response.send_message(plain(f"Nothing changed: {exc}"), ephemeral=True)
            return
        what = url or (file.filename if file else "")
        log.info("add of %s requested by user %s", what, interaction.user.id)
        if url is not None:
            await self._change(interaction, f"Adding {what}…", lambda: asyncio.to_thread(self.engine.add_url, url))
        elif file is not None:
            await self._change(interaction, f"Adding {what}…", lambda: self._add_file(file))

    @app_commands.command(name="remove", description="Remove a document from what the bot knows (admins only)")
    @app_commands.describe(document="the document to remove")
    @app_commands.default_permissions(manage_guild=True)
    async def remove(self, interaction: discord.Interaction, document: str) -> None:
        if await refused(interaction, self.settings, "remove documents"):
            return
        log.info("removal of %s requested by user %s", document, interaction.user.id)
        await self._change(
            interaction, f"Removing {document}…", lambda: asyncio.to_thread(self.engine.remove, document)
        )

    @remove.autocomplete("document")
    async def _documents(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The indexed documents whose title or file name contains what has been typed."""
        typed = current.casefold()
        matches = [
            d for d in self.engine.sources().documents if typed in d.title.casefold() or typed in d.id.casefold()
        ]
        return [app_commands.Choice(name=d.title[:100], value=d.id) for d in matches[:AUTOCOMPLETE_LIMIT]]

    async def _add_file(self, file: discord.Attachment) -> Change:
        data = await file.read()
        return await asyncio.to_thread(self.engine.add_file, file.filename, data)

    async def _change(
        self, interaction: discord.Interaction, progress: str, run: Callable[[], Awaitable[Change]]
    ) -> None:
        """Acknowledge at once (a change takes longer than Discord's 3 s), then replace it with the outcome."""
        if self.engine.rebuilding:
            await interaction.response.send_message(REBUILD_RUNNING, ephemeral=True)
            return
        await interaction.response.send_message(plain(progress), ephemeral=True)
        try:
            outcome = (await run()).describe()
        except BuildInProgress:
            outcome = REBUILD_RUNNING
        except KNOWN_ERRORS as exc:
            log.warning("document change refused: %s", exc)
            outcome = f"Nothing changed: {exc}"
        await interaction.edit_original_response(content=plain(outcome))
