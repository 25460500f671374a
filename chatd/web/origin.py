"""The Origin check of browser upgrades (starlette's CORS middleware does not cover
WebSockets). Clients that send no Origin, such as bots, are not affected."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """With an allow-list: exact matches only. Without one: the Origin's host and port must
    equal the request's Host (scheme-default ports made explicit on both sides)."""
    if origin is None:
        return True
    if allowed:
        return origin in allowed
    if not host:
        return False
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    # A browser sends a serialized origin: scheme, host and port, nothing else. Anything more
    # (userinfo, a path, a query, a backslash) is no browser's and no origin.
    if "\\" in origin or "@" in parts.netloc or parts.path or parts.query or parts.fragment:
        return False
    default = 443 if parts.scheme == "https" else 80
    origin_hostport = f"{parts.hostname}:{port or default}"
    try:
        host_parts = urlsplit("//" + host)
        host_port = host_parts.port
    except ValueError:
        return False
    if not host_parts.hostname:
        return False
    return origin_hostport == f"{host_parts.hostname}:{host_port or default}"
