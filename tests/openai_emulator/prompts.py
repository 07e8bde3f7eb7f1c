"""Reading a chat-completions request the way a scripted "model" needs to: the text of its messages, the last
question asked, the numbered passages ``[1] …``, ``[2] …`` a retrieval-augmented prompt carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .api import message_text

# A passage starts a line with its number in brackets and runs until the next such line, a blank line or the end.
_PASSAGE = re.compile(r"^[ \t]*\[(\d+)\][ \t]*(.*?)(?=^[ \t]*\[\d+\]|\n[ \t]*\n|\Z)", re.MULTILINE | re.DOTALL)


def prompt_text(request: Mapping[str, Any], role: str | None = None) -> str:
    """The text of every message of the request (of one ``role`` only if given), in order, one per line."""
    return "\n".join(message_text(m) for m in request.get("messages", ()) if role is None or m.get("role") == role)


def last_user_message(request: Mapping[str, Any]) -> str:
    """The text of the request's last ``user`` message ("" if none)."""
    users = [m for m in request.get("messages", ()) if m.get("role") == "user"]
    return message_text(users[-1]) if users else ""


def numbered_passages(request: Mapping[str, Any]) -> dict[int, str]:
    """The passages the prompt numbers ``[n]`` at the start of a line (each running to the next numbered line, a
    blank line or the end), by number, their text stripped; the first occurrence of a number wins."""
    found: dict[int, str] = {}
    for match in _PASSAGE.finditer(prompt_text(request)):
        found.setdefault(int(match.group(1)), match.group(2).strip())
    return found
