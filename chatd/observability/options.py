"""The operator's options of `chatd serve` about logs and metrics, as argparse types."""

from __future__ import annotations

import argparse
from ipaddress import ip_network
from typing import Final

# Who may read /metrics unless told otherwise: this machine only.
DEFAULT_METRICS_ALLOW: Final = ("127.0.0.0/8", "::1/128")


def networks_arg(text: str) -> tuple[str, ...]:
    """`--metrics-allow`: comma-separated addresses or CIDR networks (`10.0.0.0/8,::1`).
    Host bits set in a network (`10.1.2.3/8`) are an error: it is most likely a typo."""
    networks: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(str(ip_network(item)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"not an address or CIDR network: {item!r} ({exc})"
            ) from None
    if not networks:
        raise argparse.ArgumentTypeError("no network given")
    return tuple(networks)
