"""Uploaded files, as the chat's `send` refers to them by id.

The index answers which files an actor may attach and what they are; uploads themselves
(`POST /api/v1/files`) fill it.
"""

from __future__ import annotations

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection, not_found
from protocol.events import Attachment


class FileIndex:
    """Files known to this server by id. An empty index knows none."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[Attachment, str]] = {}

    def add(self, attachment: Attachment, uploader: str) -> None:
        self._files[attachment.id] = (attachment, uploader)

    async def describe(self, ids: list[str], actor: Actor) -> tuple[Attachment, ...] | Rejection:
        """The files, when every id is one `actor` uploaded; otherwise `not_found`."""
        found: list[Attachment] = []
        for file_id in ids:
            entry = self._files.get(file_id)
            if entry is None or entry[1] != actor.id:
                return not_found("file")
            found.append(entry[0])
        return tuple(found)
