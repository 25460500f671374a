"""`/api/v1/keys`: a shop's API keys (docs/protocol.md section 12, "Credentials").

An operator of the shop (a seller token; never a key, see `keys` in chatd.domain.policy)
creates a key with a name and scopes and is shown it once, lists the shop's live keys
(never the keys themselves), and revokes one: from then on the store refuses it to every
node's next request, and the hub has every node close the sockets it opened, with 4001.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatd.credentials import clean_name, issue_key, parse_scopes
from chatd.service import ChatService
from chatd.store.base import ApiKeyRecord
from chatd.web.http import Api, ApiError, _small_body, json_response
from protocol.codes import ErrorCode


class NewKey(msgspec.Struct, frozen=True):
    name: str
    scopes: list[str]


_new_key = msgspec.json.Decoder(NewKey)
# A name of 100 characters and the three scopes, every character escaped, fit in 4 KiB.
MAX_BODY = 4096


def _shown(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "scopes": list(record.scopes),
        "created_at": record.created_at,
    }


class KeysApi:
    def __init__(self, api: Api, service: ChatService) -> None:
        self.api = api
        self.service = service

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/keys", self.keys, methods=["GET", "POST"]),
            Route("/api/v1/keys/{key:str}", self.revoke, methods=["DELETE"]),
        ]

    def _shop(self, request: Request) -> str:
        """The shop of the operator asking; 401 / 403 for anyone else, keys included."""
        actor = self.api.actor(request)
        Api._require(actor, "keys")
        assert actor.shop is not None, "the policy lets only a shop's operators manage keys"
        return actor.shop

    async def keys(self, request: Request) -> Response:
        shop = self._shop(request)
        if request.method == "GET":
            live = await self.service.store.keys_of_shop(shop)
            return json_response({"keys": [_shown(record) for record in live]})
        try:
            body = _new_key.decode(await _small_body(request, MAX_BODY))
            name = clean_name(body.name)
            scopes = parse_scopes(body.scopes)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid key: {exc}") from exc
        issued = issue_key(shop, name, scopes, self.service.now())
        await self.service.store.create_key(issued.record)
        # The only time the key itself is in an answer: the store keeps its hash alone.
        return json_response({**_shown(issued.record), "key": issued.key}, 201)

    async def revoke(self, request: Request) -> Response:
        shop = self._shop(request)
        key = request.path_params["key"]
        # Another shop's key is answered as a key that does not exist.
        if not await self.service.store.revoke_key(shop, key, self.service.now()):
            raise ApiError(ErrorCode.NOT_FOUND, "no such key")
        # The store refuses the key to every node's next request already; the hub closes
        # its sockets on every node now rather than at their next look at the store.
        await self.service.hub.revoke_key(key)
        return Response(status_code=204)
