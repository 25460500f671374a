"""Commands: what an actor asks for, already resolved against the marketplace's data.

The service turns frames into commands; it looks up what the rules need (the order card, the
attachments' metadata, the parties' names), so `decide` stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatd.domain.actors import Actor
from protocol.events import Attachment, Decision, GoodsState, Money, OrderCard, Party, ReturnMode


@dataclass(frozen=True, slots=True)
class OpenChat:
    actor: Actor
    buyer: Party
    seller: Party
    order: OrderCard | None = None


@dataclass(frozen=True, slots=True)
class PostMessage:
    actor: Actor
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestReturn:
    actor: Actor
    order: OrderCard


@dataclass(frozen=True, slots=True)
class InitiateReturn:
    actor: Actor
    order: OrderCard


@dataclass(frozen=True, slots=True)
class ApproveReturn:
    actor: Actor
    claim: str
    mode: ReturnMode
    amount: Money


@dataclass(frozen=True, slots=True)
class RejectReturn:
    actor: Actor
    claim: str


@dataclass(frozen=True, slots=True)
class DisputeReturn:
    actor: Actor
    claim: str


@dataclass(frozen=True, slots=True)
class ResolveReturn:
    actor: Actor
    claim: str
    decision: Decision
    mode: ReturnMode | None = None


@dataclass(frozen=True, slots=True)
class ReportLogistics:
    """The marketplace back end reports the goods' path for a claim's order."""

    actor: Actor
    claim: str
    step: GoodsState
    defect: bool = False


ReturnCommand = (
    RequestReturn
    | InitiateReturn
    | ApproveReturn
    | RejectReturn
    | DisputeReturn
    | ResolveReturn
    | ReportLogistics
)
Command = OpenChat | PostMessage | ReturnCommand
