"""An Answer → a Discord embed that always fits Discord's limits.

Quotes are trimmed at a word boundary with an ellipsis *before* markdown is escaped, so a cut never leaves half an
escape sequence or an unclosed `**`; the whole embed is then shrunk until it fits the 6000-character total.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.replies import Answer, Citation, checked_note, document_line

if TYPE_CHECKING:
    from index.manager import Sources

DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
TITLE_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000
MESSAGE_LIMIT = 2000
THREAD_NAME_LIMIT = 100


ANSWER_COLOUR = discord.Colour.blurple()
ABSTAIN_COLOUR = discord.Colour.light_grey()


def answer_embed(answer: Answer, quote_limit: int = 600) -> discord.Embed:
    """The answer with its numbered sources, or the abstention with "see also" passages; within every limit.
    Quotes are shortened first, then the answer's text, then the last sources are left out."""
    text_limit, sources = DESCRIPTION_LIMIT, FIELD_COUNT_LIMIT - 1
    while True:
        embed = _answer_embed(answer, quote_limit, text_limit, sources)
        if len(embed) <= EMBED_TOTAL_LIMIT or sources == 1:
            return embed
        if quote_limit > 40:
            quote_limit //= 2
        elif text_limit > 500:
            text_limit //= 2
        else:
            sources = min(sources, len(embed.fields)) - 1


def draft_embed(question: str, draft: str) -> discord.Embed:
    """A generated answer while it is written: the draft so far, said to be unchecked yet."""
    embed = discord.Embed(
        title=safe(question, TITLE_LIMIT), description=safe(draft, DESCRIPTION_LIMIT - 2) + " …", colour=ABSTAIN_COLOUR
    )
    return embed.set_footer(text="Writing… each sentence will be checked against the passage it cites.")


def sources_embed(shared: Sources | None, own: Sources | None = None) -> discord.Embed:
    """The documents answers come from: the shared ones and (in a server) the server's own, each with title,
    source and passages, and when each index was built."""
    lines = [_index_line("Shared documents", shared), _index_line("This server's documents", own)]
    embed = discord.Embed(
        title="What I know", description=safe("\n".join(line for line in lines if line), 1000), colour=ANSWER_COLOUR
    )
    documents = (shared.documents if shared else []) + (own.documents if own else [])
    for doc in documents[:FIELD_COUNT_LIMIT]:
        link = f"\n{doc.url}" if doc.url else ""
        embed.add_field(
            name=safe(doc.title, FIELD_NAME_LIMIT),
            value=safe(document_line(doc), FIELD_VALUE_LIMIT - len(link)) + link,
            inline=False,
        )
    return embed


def _index_line(name: str, sources: Sources | None) -> str | None:
    """One line saying when an index was built and how big it is (or that it has no documents yet)."""
    if sources is None:
        return None
    if not sources.documents:
        return f"{name}: none yet (admins add them with /add)."
    return f"{name}: index built {sources.built_at} with {sources.model}, {sources.passages} passages."


def safe(text: str, limit: int) -> str:
    """`text` with markdown and mentions escaped, trimmed at a word boundary (with "…") to fit `limit`."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    budget = limit - 1
    while budget > 0:
        cut = text[:budget].rsplit(" ", 1)[0] if " " in text[:budget] else text[:budget]
        escaped = _escape(cut.rstrip(" ,;:")) + "…"
        if len(escaped) <= limit:
            return escaped
        budget -= max(1, len(escaped) - limit)
    return "…"


def plain(text: str) -> str:
    """A plain reply (hints, refusals, errors) escaped and trimmed to a message's limit."""
    return safe(text, MESSAGE_LIMIT)


def thread_name(question: str) -> str:
    """A thread named after its question: one line, trimmed at a word boundary to Discord's 100 characters."""
    name = " ".join(question.split())
    if len(name) <= THREAD_NAME_LIMIT:
        return name
    short = textwrap.shorten(name, THREAD_NAME_LIMIT, placeholder="…")
    return short if len(short) > 1 else name[: THREAD_NAME_LIMIT - 1] + "…"


def _answer_embed(answer: Answer, quote_limit: int, text_limit: int, sources: int) -> discord.Embed:
    abstained = answer.abstained
    embed = discord.Embed(
        title=safe(answer.question, TITLE_LIMIT),
        description=_description(answer, text_limit),
        colour=ABSTAIN_COLOUR if abstained else ANSWER_COLOUR,
    )
    if note := checked_note(answer):
        embed.set_footer(text=note)
    cited = answer.see_also if abstained else answer.citations
    heading = "See also" if abstained else "Sources"
    for citation in cited[:sources]:
        embed.add_field(name=_field_name(heading, citation), value=_quote(citation, quote_limit), inline=False)
    return embed


def _description(answer: Answer, limit: int) -> str:
    """The short answer in bold, then the sentences it comes from with their `[n]` markers."""
    if answer.short_answer is None:
        return safe(answer.text, limit)
    short = f"**{safe(answer.short_answer, 200)}** — "
    return short + safe(answer.text, limit - len(short))


def _field_name(heading: str, citation: Citation) -> str:
    return safe(f"{heading} [{citation.n}] {citation.title}, {citation.place}", FIELD_NAME_LIMIT)


def _quote(citation: Citation, limit: int) -> str:
    """The quoted passage as a block quote, then its source and link."""
    origin = f"\n— {safe(citation.source, 200)}" if citation.source else ""
    link = f" · {citation.url}" if citation.url and len(citation.url) < 300 else ""
    budget = min(limit, FIELD_VALUE_LIMIT - len(origin) - len(link) - 2)
    return f"> {safe(citation.text, budget)}{origin}{link}"


def _escape(text: str) -> str:
    return escape_mentions(escape_markdown(text))
