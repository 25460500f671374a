"""Whether an order the marketplace registers can be kept: the checks past its types.

The card's Struct (`protocol.events.OrderCard`) says which fields exist and their shapes; it
stays as loose as the log needs to decode what was ever kept. What a new order must also be
is checked here, once, at the door (`POST /api/v1/orders`): every later rule (the refund,
the ledger's sums, `return_too_early`'s date) counts on it. A card's `photo` is checked
against the file it names (`photo_problem`), which the door looks up first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from protocol.currencies import ISO_4217, MAX_PRICE, MIN_PRICE
from protocol.events import OrderCard

# Nothing on sale was bought before the marketplace's era.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Room for a clock of the marketplace's back end a little ahead of this server's.
FUTURE_SLACK: Final = timedelta(days=1)
# What a product photo may be: the images among the types an upload may have (a PDF is no
# picture for the card).
PHOTO_TYPES: Final = frozenset({"image/jpeg", "image/png"})


def order_problem(card: OrderCard, now: datetime) -> str | None:
    """What makes `card` unfit to register, for the error message; None when it is fit."""
    price = card.price
    if not MIN_PRICE <= price.value <= MAX_PRICE:
        return f"price.value must be from {MIN_PRICE} to {MAX_PRICE} minor units"
    if price.currency not in ISO_4217:
        return f"price.currency {price.currency!r} is not an ISO 4217 currency code"
    latest = now + FUTURE_SLACK
    for name, at in (("purchased_at", card.purchased_at), ("received_at", card.received_at)):
        if at is None:
            continue
        # A time without a zone cannot be compared with any other: it names no instant.
        if at.tzinfo is None or at.utcoffset() is None:
            return f"{name} must carry a time zone offset"
        # The upper bound also keeps the day `return_too_early` names (the day of purchase
        # + 14) in range.
        if not EARLIEST <= at <= latest:
            return f"{name} must lie between {EARLIEST:%Y-%m-%d} and a day after the server's now"
    if card.received_at is not None and card.received_at < card.purchased_at:
        return "received_at must not be before purchased_at"
    return None


def photo_problem(photo: str, mime: str | None) -> str | None:
    """What makes the file under `photo` unfit to be an order's photo; None when it is fit.

    `mime` is the sniffed type of the upload the marketplace itself made under that id, None
    when it made none: an id that names nothing and one that names a buyer's or a shop's
    upload are answered alike, so the answer tells nobody whose files exist."""
    if mime is None:
        return f"photo {photo!r} names no file the marketplace uploaded"
    if mime not in PHOTO_TYPES:
        return f"photo {photo!r} is {mime}, not a JPEG or PNG image"
    return None
