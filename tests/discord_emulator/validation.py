"""Discord's limits, and the error bodies it answers with when a request breaks them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .constants import COMMAND_CHAT_INPUT, COMPONENT_TEXT_INPUT, OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP

# Message limits (https://discord.com/developers/docs/resources/message#create-message).
MAX_CONTENT_LENGTH = 2000
MAX_EMBEDS = 10
MAX_EMBED_FIELDS = 25
MAX_EMBED_TOTAL = 6000  # the characters of all embeds of a message together
EMBED_TEXT_LIMITS = {("title",): 256, ("description",): 4096, ("footer", "text"): 2048, ("author", "name"): 256}
EMBED_FIELD_LIMITS = {"name": 256, "value": 1024}

# Application command limits.
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
MIN_DESCRIPTION, MAX_DESCRIPTION = 1, 100
MAX_OPTIONS = 25
MAX_CHAT_INPUT_COMMANDS = 100

# Autocomplete answers (callback type 8): choices, their names and string values.
MAX_AUTOCOMPLETE_CHOICES = 25
MIN_CHOICE_NAME, MAX_CHOICE_NAME = 1, 100
MAX_CHOICE_STRING_VALUE = 100

# Modal and thread limits.
MIN_MODAL_TITLE, MAX_MODAL_TITLE = 1, 45
MIN_MODAL_ROWS, MAX_MODAL_ROWS = 1, 5
MIN_THREAD_NAME, MAX_THREAD_NAME = 1, 100


@dataclass(frozen=True)
class ApiError:
    """One of Discord's JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)."""

    status: int
    code: int
    message: str

    def response(self) -> web.Response:
        return json_response({"message": self.message, "code": self.code}, status=self.status)


UNAUTHORIZED = ApiError(HTTPStatus.UNAUTHORIZED, 0, "401: Unauthorized")
NOT_FOUND = ApiError(HTTPStatus.NOT_FOUND, 0, "404: Not Found")
UNKNOWN_CHANNEL = ApiError(HTTPStatus.NOT_FOUND, 10003, "Unknown Channel")
UNKNOWN_GUILD = ApiError(HTTPStatus.NOT_FOUND, 10004, "Unknown Guild")
UNKNOWN_MEMBER = ApiError(HTTPStatus.NOT_FOUND, 10007, "Unknown Member")
UNKNOWN_MESSAGE = ApiError(HTTPStatus.NOT_FOUND, 10008, "Unknown Message")
UNKNOWN_USER = ApiError(HTTPStatus.NOT_FOUND, 10013, "Unknown User")
UNKNOWN_WEBHOOK = ApiError(HTTPStatus.NOT_FOUND, 10015, "Unknown Webhook")
UNKNOWN_INTERACTION = ApiError(HTTPStatus.NOT_FOUND, 10062, "Unknown interaction")
ALREADY_ACKNOWLEDGED = ApiError(HTTPStatus.BAD_REQUEST, 40060, "Interaction has already been acknowledged.")
MISSING_ACCESS = ApiError(HTTPStatus.FORBIDDEN, 50001, "Missing Access")
NOT_THE_AUTHOR = ApiError(HTTPStatus.FORBIDDEN, 50005, "Cannot edit a message authored by another user")
EMPTY_MESSAGE = ApiError(HTTPStatus.BAD_REQUEST, 50006, "Cannot send an empty message")
MISSING_PERMISSIONS = ApiError(HTTPStatus.FORBIDDEN, 50013, "Missing Permissions")
WRONG_CHANNEL_TYPE = ApiError(HTTPStatus.BAD_REQUEST, 50024, "Cannot execute action on this channel type")
INVALID_RECIPIENT = ApiError(HTTPStatus.BAD_REQUEST, 50033, "Invalid Recipient(s)")
INVALID_FORM_BODY = ApiError(HTTPStatus.BAD_REQUEST, 50035, "Invalid Form Body")
THREAD_ALREADY_CREATED = ApiError(HTTPStatus.BAD_REQUEST, 160004, "A thread has already been created for this message")


def json_response(data: Any, status: int = HTTPStatus.OK) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def no_content() -> web.Response:
    return web.Response(status=HTTPStatus.NO_CONTENT)


class FormErrors:
    """Discord's "Invalid Form Body" (code 50035) error tree, built one field path at a time."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def response(self) -> web.Response | None:
        if not self.tree:
            return None
        body = {"message": INVALID_FORM_BODY.message, "code": INVALID_FORM_BODY.code, "errors": self.tree}
        return json_response(body, status=INVALID_FORM_BODY.status)


def form_error(path: tuple[str | int, ...], code: str, message: str) -> web.Response:
    errors = FormErrors()
    errors.add(path, code, message)
    return errors.response()  # type: ignore[return-value]  # never None with an error added


def bad_length(low: int, high: int) -> str:
    return f"Must be between {low} and {high} in length."


def too_long(limit: int) -> str:
    return f"Must be {limit} or fewer in length."


def message_errors(message: dict[str, Any], body: dict[str, Any]) -> web.Response | None:
    """Discord's message limits: 2000 characters, 10 embeds, the embed field limits and 6000 in total."""
    if not (message["content"] or message["embeds"] or message["components"] or body.get("allow_empty")):
        return EMPTY_MESSAGE.response()
    errors = FormErrors()
    if len(message["content"]) > MAX_CONTENT_LENGTH:
        errors.add(("content",), "BASE_TYPE_MAX_LENGTH", too_long(MAX_CONTENT_LENGTH))
    if len(message["embeds"]) > MAX_EMBEDS:
        errors.add(("embeds",), "BASE_TYPE_MAX_LENGTH", too_long(MAX_EMBEDS))
    total = 0
    for index, embed in enumerate(message["embeds"]):
        for path, limit in EMBED_TEXT_LIMITS.items():
            value = embed.get(path[0]) if len(path) == 1 else (embed.get(path[0]) or {}).get(path[1])
            total += len(value or "")
            if len(value or "") > limit:
                errors.add(("embeds", index, *path), "BASE_TYPE_MAX_LENGTH", too_long(limit))
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            errors.add(("embeds", index, "fields"), "BASE_TYPE_MAX_LENGTH", too_long(MAX_EMBED_FIELDS))
        for number, embed_field in enumerate(fields):
            for key, limit in EMBED_FIELD_LIMITS.items():
                text = str(embed_field.get(key) or "")
                total += len(text)
                if not text:
                    errors.add(("embeds", index, "fields", number, key), "BASE_TYPE_REQUIRED", "This field is required")
                elif len(text) > limit:
                    errors.add(("embeds", index, "fields", number, key), "BASE_TYPE_MAX_LENGTH", too_long(limit))
    if total > MAX_EMBED_TOTAL:
        errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")
    allowed = body.get("allowed_mentions") or {}
    for kind in ("users", "roles"):
        if kind in (allowed.get("parse") or []) and kind in allowed:
            errors.add(("allowed_mentions", kind), "SET_TYPE_ALREADY_CONTAINS_VALUE", f"parse contains {kind}")
    return errors.response()


def command_errors(commands: list[dict[str, Any]]) -> web.Response | None:
    """Discord's checks of a bulk overwrite of application commands: names, descriptions, options, count."""
    errors = FormErrors()
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        kind, name = command.get("type", COMMAND_CHAT_INPUT), command.get("name", "")
        chat_input = kind == COMMAND_CHAT_INPUT
        if chat_input and (not COMMAND_NAME.match(name) or name != name.lower()):
            errors.add((index, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if (kind, name) in seen:
            errors.add(
                (index, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
            )
        seen.add((kind, name))
        if chat_input and not MIN_DESCRIPTION <= len(command.get("description", "")) <= MAX_DESCRIPTION:
            errors.add((index, "description"), "BASE_TYPE_BAD_LENGTH", bad_length(MIN_DESCRIPTION, MAX_DESCRIPTION))
        options = command.get("options") or []
        if len(options) > MAX_OPTIONS:
            errors.add((index, "options"), "BASE_TYPE_MAX_LENGTH", too_long(MAX_OPTIONS))
        optional_seen = False
        for number, option in enumerate(options):
            path = (index, "options", number)
            if not COMMAND_NAME.match(option.get("name", "")) or option["name"] != option["name"].lower():
                errors.add((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            described = option.get("type") not in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP)
            if described and not MIN_DESCRIPTION <= len(option.get("description", "")) <= MAX_DESCRIPTION:
                errors.add((*path, "description"), "BASE_TYPE_BAD_LENGTH", bad_length(MIN_DESCRIPTION, MAX_DESCRIPTION))
            if option.get("required") and optional_seen:
                errors.add(
                    (*path, "required"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
            optional_seen |= not option.get("required", False)
    if len([c for c in commands if c.get("type", COMMAND_CHAT_INPUT) == COMMAND_CHAT_INPUT]) > MAX_CHAT_INPUT_COMMANDS:
        errors.add(
            (),
            "APPLICATION_COMMAND_TOO_MANY",
            f"Maximum number of application commands reached ({MAX_CHAT_INPUT_COMMANDS})",
        )
    return errors.response()


def modal_errors(data: dict[str, Any]) -> web.Response | None:
    """Discord's checks of a modal: a custom id, a title of 1-45 characters, 1-5 rows of one text input."""
    if not data.get("custom_id") or not MIN_MODAL_TITLE <= len(data.get("title") or "") <= MAX_MODAL_TITLE:
        return form_error(("data", "title"), "BASE_TYPE_BAD_LENGTH", bad_length(MIN_MODAL_TITLE, MAX_MODAL_TITLE))
    rows = data.get("components") or []
    if not MIN_MODAL_ROWS <= len(rows) <= MAX_MODAL_ROWS or any(
        len(row.get("components", [])) != 1 or row["components"][0].get("type") != COMPONENT_TEXT_INPUT for row in rows
    ):
        return form_error(("data", "components"), "MODAL_INVALID", "A modal holds 1-5 rows of one text input.")
    return None


def autocomplete_errors(data: dict[str, Any]) -> web.Response | None:
    """Discord's checks of an autocomplete answer: at most 25 choices, each named in 1-100 characters, string
    values of at most 100."""
    errors = FormErrors()
    choices = data.get("choices")
    if not isinstance(choices, list):
        errors.add(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")
        return errors.response()
    if len(choices) > MAX_AUTOCOMPLETE_CHOICES:
        errors.add(("data", "choices"), "BASE_TYPE_MAX_LENGTH", too_long(MAX_AUTOCOMPLETE_CHOICES))
    for index, choice in enumerate(choices):
        path = ("data", "choices", index)
        if not MIN_CHOICE_NAME <= len(str(choice.get("name") or "")) <= MAX_CHOICE_NAME:
            errors.add((*path, "name"), "BASE_TYPE_BAD_LENGTH", bad_length(MIN_CHOICE_NAME, MAX_CHOICE_NAME))
        value = choice.get("value")
        if value is None:
            errors.add((*path, "value"), "BASE_TYPE_REQUIRED", "This field is required")
        elif isinstance(value, str) and len(value) > MAX_CHOICE_STRING_VALUE:
            errors.add((*path, "value"), "BASE_TYPE_MAX_LENGTH", too_long(MAX_CHOICE_STRING_VALUE))
    return errors.response()
