"""Security headers on every HTTP answer of the app: the browser app's pages, the API's JSON,
files, errors.

The Content-Security-Policy fits what `static/` does and nothing more: its own scripts (ES
modules) and stylesheet, `fetch` and `/ws` to the same origin, images from the same origin,
from `blob:` URLs (attachments are fetched with the token and shown through object URLs) and
`data:` (the empty favicon); no inline script or style, no plugins, no framing by anyone.
"""

from __future__ import annotations

from typing import Any, Final

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)

# An uploaded file's answer (chatd.web.http): nothing in it may run or load anything, even
# where a browser shows it as a page (`sandbox` also gives it an origin of its own, so that
# no script could reach the app's storage or send requests as the user).
FILE_SECURITY_POLICY: Final = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "object-src 'none'; sandbox"
)

SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # frame-ancestors above, for browsers that predate it.
    (b"x-frame-options", b"DENY"),
)
_NAMES: Final = frozenset(name for name, _ in SECURITY_HEADERS)
_CSP: Final = b"content-security-policy"


class SecurityHeaders:
    """ASGI middleware: adds `SECURITY_HEADERS` to each HTTP response start, replacing any a
    handler set itself, but for a Content-Security-Policy of the handler's own: that one is
    kept (a file's, `FILE_SECURITY_POLICY`, stricter than the app's). WebSockets pass
    untouched (their frames never go through here)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                kept = [(k, v) for k, v in headers if k.lower() not in _NAMES]
                own = [(k, v) for k, v in headers if k.lower() == _CSP][:1]
                added = [(k, v) for k, v in SECURITY_HEADERS if not (own and k == _CSP)]
                message = {**message, "headers": [*kept, *own, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
