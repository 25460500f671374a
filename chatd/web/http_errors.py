"""JSON errors for the statuses starlette answers by itself (a method a route does not take,
a path no route has) and for anything a route raises unhandled: every HTTP answer of chatd
that is an error is `{"error": {"code", "message", "details"?}}`, never plain text."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from chatd.web.http import error_response
from protocol.codes import ErrorCode

# The wire code of a status that no route chose itself; any other 4xx is `bad_frame` (a
# request the server will not take as written: 405, 415, ...), as the socket answers one.
_CODES: dict[int, ErrorCode] = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _CODES.get(status, ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_FRAME)
    if status == 405:
        message = f"{request.method} is not allowed here"
    else:
        message = exc.detail.lower() if isinstance(exc.detail, str) else str(exc.detail)
    response = error_response(code, message, status=status)
    # `Allow` on a 405, say: what the client needs to do better.
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _no_api_route(request: Request) -> Response:
    """What no route of the API takes: 405 with `Allow` when the path is a route's and the
    method is not, else 404. Without it the browser app's files, mounted at `/`, would
    answer every other method on an API path with their own 405 and `Allow: GET, HEAD`."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route is not API_FALLBACK and route.methods:
            match, _ = route.matches(request.scope)
            if match == Match.PARTIAL:
                allowed |= route.methods
    if allowed:
        raise HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
    raise HTTPException(404)


# After every route of the API and before the browser app's files. A route takes only the
# methods it names (GET and HEAD by default), so this one names every common method.
API_FALLBACK = Route(
    "/api/{rest:path}",
    _no_api_route,
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
)
