"""Changing what the bot knows, for admins only: `/add url:` fetches a web page, `/add file:` takes an attached
.txt, .md, .html or .pdf, `/remove document:` takes a document out (with autocomplete). In a server these change
that server's own documents; in a bot owner's DM, the shared base.

Each change runs in a worker thread and ends with the new index swapped in; questions are answered from the old
one meanwhile. Replies are ephemeral: one line saying what was added or removed, or why nothing changed.
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.admin import admin_only, change_index
from bot.render import plain
from index.documents import DocumentError
from index.library import Library
from index.manager import IndexManager

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25  # choices Discord accepts in one autocomplete answer


class DocumentsCog(commands.Cog):
    """`/add` and `/remove`, restricted to administrators like `/rebuild`."""

    def __init__(self, library: Library) -> None:
        self.library = library

    @app_commands.command(name="add", description="Add a web page or a file to what the bot knows (admins only)")
    @app_commands.describe(url="a web page, PDF or text file to fetch", file="a .txt, .md, .html or .pdf file")
    @admin_only("add documents")
    async def add(
        self, interaction: discord.Interaction, url: str | None = None, file: discord.Attachment | None = None
    ) -> None:
        if (url is None) == (file is None):
            await interaction.response.send_message("Give either a `url` or a `file`, not both.", ephemeral=True)
            return
        indexes = self.library.manager(interaction.guild_id)
        try:
            if file is not None:
                indexes.check_size(file.filename, file.size)  # before downloading it
        except DocumentError as exc:
            await interaction.response.send_message(plain(f"Nothing changed: {exc}"), ephemeral=True)
            return
        what = url or (file.filename if file else "")
        log.info("add of %s requested by user %s in %s", what, interaction.user.id, interaction.guild_id or "a DM")
        if url is not None:
            await change_index(interaction, indexes, f"Adding {what}…", lambda: _add_url(indexes, url))
        elif file is not None:
            await change_index(interaction, indexes, f"Adding {what}…", lambda: _add_file(indexes, file))

    @app_commands.command(name="remove", description="Remove a document from what the bot knows (admins only)")
    @app_commands.describe(document="the document to remove")
    @admin_only("remove documents")
    async def remove(self, interaction: discord.Interaction, document: str) -> None:
        log.info("removal of %s requested by user %s in %s", document, interaction.user.id, interaction.guild_id)
        indexes = self.library.manager(interaction.guild_id)
        await change_index(interaction, indexes, f"Removing {document}…", lambda: _remove(indexes, document))

    @remove.autocomplete("document")
    async def _documents(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The documents `/remove` can take out here whose title or file name contains what has been typed."""
        typed = current.casefold()
        server = interaction.guild_id
        library = self.library
        documents = (library.base.sources() if server is None else library.sources(server)).documents
        matches = [d for d in documents if typed in d.title.casefold() or typed in d.id.casefold()]
        return [app_commands.Choice(name=d.title[:100], value=d.id) for d in matches[:AUTOCOMPLETE_LIMIT]]


async def _add_url(indexes: IndexManager, url: str) -> str:
    return (await asyncio.to_thread(indexes.add_url, url)).describe()


async def _add_file(indexes: IndexManager, file: discord.Attachment) -> str:
    data = await file.read()
    return (await asyncio.to_thread(indexes.add_file, file.filename, data)).describe()


async def _remove(indexes: IndexManager, document: str) -> str:
    return (await asyncio.to_thread(indexes.remove, document)).describe()
