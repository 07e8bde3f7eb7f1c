"""The CDN: the files users attach to slash commands (options of type ATTACHMENT), kept and served at signed URLs.

On Discord such a file is uploaded by the client before the command is sent; the interaction carries its id as the
option's value and the attachment object in ``data.resolved.attachments``, whose ``url`` (cdn.discordapp.com) and
``proxy_url`` (media.discordapp.net) are signed with ``ex`` (expiry), ``is`` (issued) and ``hm`` (signature) and
need no bot token. Here both are served by the emulator's own server on 127.0.0.1.
"""

from __future__ import annotations

import hmac
import mimetypes
import secrets
import time
from hashlib import sha256
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import quote

from aiohttp import web

from .constants import (
    ATTACHMENT_SIGNATURE_BYTES,
    ATTACHMENT_SIZE_LIMIT,
    ATTACHMENT_URL_TTL_SECONDS,
    CDN_ATTACHMENTS_PATH,
    MEDIA_PROXY_PREFIX,
)
from .state import UserAttachment, World

DEFAULT_CONTENT_TYPE = "application/octet-stream"
GONE_TEXT = "This content is no longer available."  # what the CDN answers for an unknown or expired URL
CDN_ROUTE = CDN_ATTACHMENTS_PATH + "/{channel_id}/{attachment_id}/{filename}"
CDN_ROUTES = (CDN_ROUTE, MEDIA_PROXY_PREFIX + CDN_ROUTE)  # the CDN and the media proxy


class UserFile(NamedTuple):
    """A file for a user to attach to a slash command: ``UserFile("notes.md", b"# Notes", "text/markdown")``.

    A plain ``(filename, data)`` or ``(filename, data, content_type)`` tuple works too; without a content type
    it is guessed from the file name, as a Discord client does.
    """

    filename: str
    data: bytes
    content_type: str | None = None


def is_cdn_path(path: str) -> bool:
    return path.startswith((CDN_ATTACHMENTS_PATH + "/", MEDIA_PROXY_PREFIX + CDN_ATTACHMENTS_PATH + "/"))


def _guessed_type(filename: str) -> str:
    """The content type a Discord client declares for a file: from its name, text in UTF-8."""
    guessed = mimetypes.guess_type(filename)[0]
    if guessed is None:
        return DEFAULT_CONTENT_TYPE
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


class Cdn:
    """Keeps the users' attachments and serves them at their signed URLs."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._key = secrets.token_bytes(ATTACHMENT_SIGNATURE_BYTES)

    def attach(self, channel_id: int, file: UserFile | tuple[Any, ...]) -> dict[str, Any]:
        """Store a file a user attaches in a channel; return the attachment object of ``resolved.attachments``."""
        file = UserFile(*file)
        if not isinstance(file.data, bytes):
            raise TypeError(f"the data of {file.filename!r} must be bytes")
        if len(file.data) > ATTACHMENT_SIZE_LIMIT:  # a Discord client refuses to upload it
            raise ValueError(f"{file.filename} is larger than the {ATTACHMENT_SIZE_LIMIT:,}-byte upload limit")
        content_type = file.content_type or _guessed_type(file.filename)
        issued = int(time.time())
        attachment_id = self.world.snowflake()
        attachment = UserAttachment(
            attachment_id,
            file.filename.replace(" ", "_"),  # Discord replaces spaces in uploaded file names
            file.data,
            content_type,
            channel_id,
            expires=issued + ATTACHMENT_URL_TTL_SECONDS,
            issued=issued,
            signature="",
        )
        attachment.signature = self._sign(attachment)
        self.world.attachments[attachment_id] = attachment
        path = f"{CDN_ATTACHMENTS_PATH}/{channel_id}/{attachment_id}/{quote(attachment.filename)}"
        query = f"?ex={attachment.expires:x}&is={attachment.issued:x}&hm={attachment.signature}&"
        origin = f"http://127.0.0.1:{self.world.port}"
        return {
            "id": str(attachment_id),
            "filename": attachment.filename,
            "size": len(file.data),
            "url": origin + path + query,
            "proxy_url": origin + MEDIA_PROXY_PREFIX + path + query,
            "content_type": content_type,
            "ephemeral": True,  # slash command attachments are ephemeral attachments
        }

    async def serve(self, request: web.Request) -> web.Response:
        """GET of an attachment's URL: its bytes, or the CDN's 404 for a wrong, forged or expired URL."""
        attachment = self.world.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None or not self._valid(attachment, request):
            return web.Response(status=HTTPStatus.NOT_FOUND, text=GONE_TEXT)
        attachment.downloads += 1
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})

    def _valid(self, attachment: UserAttachment, request: web.Request) -> bool:
        query, match = request.query, request.match_info
        return (
            match["channel_id"] == str(attachment.channel_id)
            and match["filename"] == attachment.filename
            and query.get("ex") == f"{attachment.expires:x}"
            and query.get("is") == f"{attachment.issued:x}"
            and hmac.compare_digest(query.get("hm", ""), attachment.signature)
            and time.time() < attachment.expires
        )

    def _sign(self, attachment: UserAttachment) -> str:
        message = f"{attachment.channel_id}/{attachment.id}/{attachment.filename}/{attachment.expires}".encode()
        return hmac.new(self._key, message, sha256).hexdigest()
