"""What Discord is sent, built from answers made here (no model, no emulator): escaping, trimming, limits."""

from __future__ import annotations

import pytest

from bot.render import (
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    MESSAGE_LIMIT,
    THREAD_NAME_LIMIT,
    answer_embed,
    plain,
    safe,
    thread_name,
)
from bot.replies import Answer, Citation


def test_safe_escapes_markdown_and_mentions() -> None:
    escaped = safe("**bold** @everyone <@123456789012345678>", 100)
    assert escaped == "\\*\\*bold\\*\\* @\u200beveryone <@\u200b123456789012345678>"


def test_safe_trims_at_a_word_boundary_and_never_splits_an_escape() -> None:
    text = "one two three **four** five"
    for limit in range(2, 40):
        trimmed = safe(text, limit)
        assert len(trimmed) <= limit
        assert trimmed == safe(text, 100) or trimmed.endswith("…")
        assert not trimmed.rstrip("…").endswith("\\")
    assert safe(text, 12) == "one two…"


def test_plain_fits_a_message() -> None:
    assert len(plain("word " * 1000)) <= MESSAGE_LIMIT


def test_thread_names_are_one_line_within_discords_limit() -> None:
    assert thread_name("  Who heads\nthe secretariat?  ") == "Who heads the secretariat?"
    long = thread_name("Who heads the secretariat of the organization " * 5)
    assert len(long) <= THREAD_NAME_LIMIT and long.endswith("…") and " " not in long[-2:]
    assert len(thread_name("x" * 300)) == THREAD_NAME_LIMIT


@pytest.mark.parametrize("sources", [3, 10, 29])
def test_an_answer_with_huge_citations_fits_every_embed_limit(sources: int) -> None:
    quote = "word " * 2000
    citations = [
        Citation(n, "doc", "A title " * 40, n, quote, 1.0, "Source", "https://example.org")
        for n in range(1, sources + 1)
    ]
    answer = Answer("Why? " * 100, "An answer. [1] " * 400, False, citations, short_answer="yes " * 100)
    embed = answer_embed(answer)
    assert len(embed) <= EMBED_TOTAL_LIMIT and len(embed.description or "") <= DESCRIPTION_LIMIT
    assert embed.description.startswith("**yes yes")
    if sources <= 10:  # TOP_K is at most 10: every source is shown
        assert len(embed.fields) == sources
