"""`GET /api/v1/operators`: the operators a shop is known to have, whom its chats may be
assigned to (docs/protocol.md, "The operator's day").

A shell, as chatd.web.keys_api is. The list is what chatd.operators has learnt from the
tokens the shop's operators signed in with; an operator asking is one of them from then on.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatd.service import ChatService
from chatd.web.http import Api, json_response


class OperatorShown(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str


class OperatorsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    operators: list[OperatorShown]


class OperatorsApi:
    def __init__(self, api: Api, service: ChatService) -> None:
        self.api = api
        self.service = service

    def routes(self) -> list[Route]:
        return [Route("/api/v1/operators", self.operators)]

    async def operators(self, request: Request) -> Response:
        actor = self.api.actor(request)
        Api._require(actor, "operators")
        assert actor.shop is not None, "the policy lets only a shop's side list its operators"
        known = self.service.operators
        await known.seen(actor)
        shown = [OperatorShown(id=r.id, name=r.name) for r in await known.of_shop(actor.shop)]
        return json_response(OperatorsAnswer(operators=shown))
