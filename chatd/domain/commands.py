"""Commands: what an actor asks for, already resolved against the marketplace's data.

The service turns frames into commands; it looks up what the rules need (the order card, the
attachments' metadata, the parties' names), so `decide` stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatd.domain.actors import Actor
from protocol.events import (
    Attachment,
    Decision,
    GoodsState,
    Money,
    Operator,
    OrderCard,
    Party,
    ReturnMode,
)


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
    # The buyer's evidence (version 1.1): a comment and the files it attaches, as resolved
    # by the service like a message's.
    comment: str | None = None
    attachments: tuple[Attachment, ...] = ()


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
    reason: str | None = None


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
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawReturn:
    """The shop takes back its offer while the buyer has not taken it up."""

    actor: Actor
    claim: str


@dataclass(frozen=True, slots=True)
class EscalateClaim:
    """A request's deadline for the shop's decision has passed: the managers decide.

    Issued by the server's deadlines, never by a person. It applies only while the claim
    still waits in `requested` and only once its deadline has passed, so a second node
    firing the same deadline is refused and appends nothing."""

    actor: Actor
    claim: str


@dataclass(frozen=True, slots=True)
class ExpireOffer:
    """An offer's deadline for the buyer's answer has passed: the offer ends. Like
    `EscalateClaim`, only while the offer still waits, and only once it is due."""

    actor: Actor
    claim: str


@dataclass(frozen=True, slots=True)
class ReportLogistics:
    """The marketplace back end reports the goods' path for a claim's order."""

    actor: Actor
    claim: str
    step: GoodsState
    defect: bool = False


@dataclass(frozen=True, slots=True)
class AssignChat:
    """The shop gives the chat to one of its operators (`operator`), or to nobody (None).

    The service resolves the operator against those the shop is known to have (chatd.
    operators) before the command is made, so that `decide` needs no look-up."""

    actor: Actor
    operator: Operator | None


@dataclass(frozen=True, slots=True)
class PostNote:
    """An operator's private note in the chat: the shop's alone."""

    actor: Actor
    text: str


ReturnCommand = (
    RequestReturn
    | InitiateReturn
    | ApproveReturn
    | RejectReturn
    | DisputeReturn
    | ResolveReturn
    | ReportLogistics
    | WithdrawReturn
    | EscalateClaim
    | ExpireOffer
)
# The shop's own work in a chat (version 1.1): events only the shop's side reads.
ShopCommand = AssignChat | PostNote
Command = OpenChat | PostMessage | ReturnCommand | ShopCommand
