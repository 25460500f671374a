"""Delay and loss per packet on a TUN device: what `tc netem` does, for kernels without it.

    ip netns exec NS python -m chatd.proof.impair --device imp1 --delay-ms 80 \
        --jitter-ms 20 --loss 0.05

Made by chatd.proof.netlab inside its switch namespace. It creates the TUN device (IP
packets, no header), brings it up and prints `ready`; the switch then routes the packets of
one pair of hosts into it. Each packet read is dropped with probability `--loss`, or written
back `--delay-ms` ± `--jitter-ms` later (never before the packet ahead of it: the order of a
link is kept), and the kernel forwards it on to its destination. TCP sees real loss and real
delay, and retransmits as it would across a bad link. On SIGTERM it prints what it did
(`relayed N`, `dropped N`) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import random
import signal
import struct
import subprocess
import sys
from pathlib import Path

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """The TUN device `name`, made in this process's namespace and up, rp_filter off (the
    packets it hands back come from addresses routed through other devices)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    Path(f"/proc/sys/net/ipv4/conf/{name}/rp_filter").write_text("0")
    return fd


class Relay:
    def __init__(self, fd: int, delay: float, jitter: float, loss: float, seed: int) -> None:
        self.fd = fd
        self.delay = delay
        self.jitter = jitter
        self.loss = loss
        self.random = random.Random(seed)
        self.relayed = 0
        self.dropped = 0
        self._last_due = 0.0

    def readable(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                packet = os.read(self.fd, 65_536)
            except BlockingIOError:
                return
            if self.random.random() < self.loss:
                self.dropped += 1
                continue
            due = loop.time() + max(0.0, self.delay + self.random.uniform(-1, 1) * self.jitter)
            due = max(due, self._last_due)
            self._last_due = due
            loop.call_at(due, self._write, packet)

    def _write(self, packet: bytes) -> None:
        try:
            os.write(self.fd, packet)
            self.relayed += 1
        except OSError:
            self.dropped += 1  # the device is full or going away: a packet lost like any other


async def serve(fd: int, args: argparse.Namespace) -> Relay:
    relay = Relay(fd, args.delay_ms / 1000, args.jitter_ms / 1000, args.loss, args.seed)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(fd, relay.readable)
    print("ready", flush=True)
    await stop.wait()
    loop.remove_reader(fd)
    os.close(fd)
    return relay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatd.proof.impair", description=__doc__)
    parser.add_argument("--device", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.loss < 1.0 or args.delay_ms < 0 or args.jitter_ms < 0:
        parser.error("loss is in [0, 1), delay and jitter not below 0")
    relay = asyncio.run(serve(open_tun(args.device), args))
    print(f"relayed {relay.relayed}", flush=True)
    print(f"dropped {relay.dropped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
