"""Where a webhook may be sent: the checks against server-side request forgery.

A shop names the URL, and the server makes the request from inside its own network; a URL
on loopback, a private network, link-local (the cloud's metadata service at 169.254.169.254)
or any other address that is not globally routable would let a shop reach what only the
server should. So every address the host resolves to must be global, when the endpoint is
created and again at each delivery, and the delivery then connects to the very address that
was checked (`Target`), so a name that resolves to a public address for the check and to a
private one a moment later (DNS rebinding) gains nothing. `--webhook-allow-private` turns
all this off (a receiver on the same machine, in development and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(ValueError):
    """A URL a webhook may not be sent to; the message says why."""


@dataclass(frozen=True, slots=True)
class Destination:
    url: str
    scheme: str
    host: str  # without brackets, lower case
    port: int


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for one delivery: `address` was checked; `host` is what the request
    names (its Host header, and the TLS server name and certificate check for https)."""

    destination: Destination
    address: str | None  # None: connect by name (private destinations allowed)


def parse(url: str) -> Destination:
    """An http or https URL with a host; DestinationRefused otherwise."""
    if len(url) > MAX_URL:
        raise DestinationRefused(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("the URL must be http:// or https://")
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        # A password in the URL would be shown back in every listing of the endpoint.
        raise DestinationRefused("the URL may not carry a user name or password")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise DestinationRefused("the URL may not contain spaces or control characters")
    return Destination(
        url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80)
    )


def is_public(address: IPAddress) -> bool:
    """Whether `address` is one the server may send to: globally routable, not multicast.
    An IPv4 address written in IPv6 (`::ffff:127.0.0.1`, NAT64's `64:ff9b::/96`) is judged
    as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def resolve(destination: Destination) -> list[IPAddress]:
    """Every address the destination's host resolves to (the host itself when it is an
    address); DestinationRefused when it resolves to none."""
    try:
        return [ipaddress.ip_address(destination.host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"the host {destination.host} does not resolve: {exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # A scoped IPv6 address carries `%zone`; the zone names a local interface.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise DestinationRefused(f"the host {destination.host} does not resolve")
    return found


async def check(url: str, *, allow_private: bool) -> Target:
    """Where to send to `url` now: every address its host resolves to must be public (all of
    them: a name with one private address among public ones is refused, since which one a
    client picks is not ours to know), unless `allow_private`."""
    destination = parse(url)
    if allow_private:
        return Target(destination, None)
    addresses = await resolve(destination)
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise DestinationRefused(
            f"{destination.host} resolves to {refused[0]}, a loopback, private, link-local or "
            "otherwise non-public address; webhooks go to public addresses only"
        )
    return Target(destination, str(addresses[0]))
