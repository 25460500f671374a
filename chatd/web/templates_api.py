"""`/api/v1/templates`: a shop's canned replies (docs/protocol.md, "Canned replies").

A shell, as chatd.web.keys_api is: the shop's operators (a seller token, or an API key with
`chat:write`: see `templates` in chatd.domain.policy) list, create, replace and delete the
templates every operator of the shop shares. What a template may hold, and the defaults a
shop finds at its first listing, are chatd.domain.templates's; the store keeps them.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatd.domain import templates as rules
from chatd.domain.errors import Rejection
from chatd.service import ChatService
from chatd.store.base import ShortcutTaken, TemplateRecord, TooManyTemplates
from chatd.web.http import Api, ApiError, _small_body, from_rejection, json_response
from protocol.codes import ErrorCode


class TemplateBody(msgspec.Struct, frozen=True, kw_only=True):
    """A template as written: POST and PUT take all three fields."""

    shortcut: str
    title: str
    text: str


class TemplateShown(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    shortcut: str
    title: str
    text: str


class TemplatesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    templates: list[TemplateShown]


_body = msgspec.json.Decoder(TemplateBody)
# A text of 1 000 characters and the rest, every character escaped, fit in 16 KiB.
MAX_BODY = 16 * 1024


def _shown(record: TemplateRecord) -> TemplateShown:
    return TemplateShown(
        id=record.id, shortcut=record.shortcut, title=record.title, text=record.text
    )


def new_template_id() -> str:
    return "tpl_" + secrets.token_hex(8)


def _record(
    shop: str, draft: rules.TemplateDraft, now: datetime, template: str | None = None
) -> TemplateRecord:
    """The record of `draft` in `shop`, made or changed at `now` (a new id unless
    `template` names the one it replaces)."""
    return TemplateRecord(
        id=template or new_template_id(),
        shop=shop,
        shortcut=draft.shortcut,
        title=draft.title,
        text=draft.text,
        created_at=now,
        updated_at=now,
    )


class TemplatesApi:
    def __init__(self, api: Api, service: ChatService) -> None:
        self.api = api
        self.service = service

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/templates", self.templates, methods=["GET", "POST"]),
            Route("/api/v1/templates/{template:str}", self.template, methods=["PUT", "DELETE"]),
        ]

    def _shop(self, request: Request) -> str:
        """The shop of the operator (or key) asking; 401 / 403 for anyone else."""
        actor = self.api.actor(request)
        Api._require(actor, "templates")
        assert actor.shop is not None, "the policy lets only a shop's operators keep templates"
        return actor.shop

    async def _draft(self, request: Request) -> rules.TemplateDraft | Response:
        try:
            body = _body.decode(await _small_body(request, MAX_BODY))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiError(ErrorCode.BAD_FRAME, f"not a valid template: {exc}") from exc
        draft = rules.checked(body.shortcut, body.title, body.text, self.service.rules.max_text)
        return from_rejection(draft) if isinstance(draft, Rejection) else draft

    async def templates(self, request: Request) -> Response:
        shop = self._shop(request)
        store = self.service.store
        if request.method == "GET":
            await self._seed(shop)
            listed = await store.templates_of_shop(shop)
            return json_response(TemplatesAnswer(templates=[_shown(r) for r in listed]))
        draft = await self._draft(request)
        if isinstance(draft, Response):
            return draft
        record = _record(shop, draft, self.service.now())
        try:
            await store.create_template(record, rules.MAX_PER_SHOP)
        except ShortcutTaken as exc:
            raise _taken(draft.shortcut) from exc
        except TooManyTemplates as exc:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"a shop keeps at most {rules.MAX_PER_SHOP} templates: delete one first",
            ) from exc
        return json_response(_shown(record), 201)

    async def template(self, request: Request) -> Response:
        shop = self._shop(request)
        template = request.path_params["template"]
        store = self.service.store
        if request.method == "DELETE":
            # Another shop's template is answered as one that does not exist.
            if not await store.delete_template(shop, template):
                raise ApiError(ErrorCode.NOT_FOUND, "no such template")
            return Response(status_code=204)
        draft = await self._draft(request)
        if isinstance(draft, Response):
            return draft
        # Its `created_at` is not written: the template keeps its own.
        replacing = _record(shop, draft, self.service.now(), template)
        try:
            kept = await store.update_template(replacing)
        except ShortcutTaken as exc:
            raise _taken(draft.shortcut) from exc
        if kept is None:
            raise ApiError(ErrorCode.NOT_FOUND, "no such template")
        return json_response(_shown(kept))

    async def _seed(self, shop: str) -> None:
        """The defaults, for a shop at its first listing (chatd.store.base.TemplateStore)."""
        now = self.service.now()
        defaults = [
            _record(shop, draft, now) for draft in rules.defaults(self.service.rules.marketplace)
        ]
        await self.service.store.seed_templates(shop, now, defaults)


def _taken(shortcut: str) -> ApiError:
    return ApiError(
        ErrorCode.CONFLICT,
        f"the shop has a template with the shortcut {shortcut!r} already",
        {"shortcut": shortcut},
    )
