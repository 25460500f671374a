"""A private network of hosts in Linux network namespaces, for the proof programs.

Every host is a namespace of its own with one veth link to a switch namespace (`sw`) that
routes between them, on a private subnet that exists only inside these namespaces:

    host i:   eth0 10.77.i.2/24, default route via 10.77.i.1
    sw:       to-HOST 10.77.i.1/24, IPv4 forwarding on

The switch is where faults are made, between two named hosts and in both directions:

- `cut(x, y)`: a policy rule in the switch sends their packets to a blackhole. Nothing is
  answered, nothing is refused: a connection between them goes silent, as across a real
  partition, and comes back by itself at `heal` (TCP retransmits what was lost meanwhile).
- `impair(x, y, delay, jitter, loss)`: their packets are routed through a TUN device in the
  switch, where a relay (chatd.proof.impair) holds each packet for `delay` ± `jitter` and
  drops `loss` of them, per packet, as `tc netem` would. `tc netem` itself is used by
  nothing here: `netem_available()` says whether the kernel has it, so the programs can say
  which one did the work.

Names carry a prefix unique to the run (`chatdp-PID-RANDOM-`), so runs side by side never
meet. `destroy()` ends every process inside the namespaces (by the ids `ip netns pids` gives)
and deletes them; it is safe to call more than once, and the programs call it from `finally`,
from `atexit` and on SIGTERM/SIGINT/SIGHUP.

Needs root, `ip` (iproute2) and /dev/net/tun. `preflight()` names what is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.77"
NETNS_DIR = Path("/var/run/netns")
_CLONE_NEWNET = 0x40000000
# Rule preferences in the switch: cuts come before impairments, so a cut link stays cut.
_CUT_PREF = 100
_IMPAIR_PREF = 200
_IMPAIR_TABLE = 100


class LabUnavailable(RuntimeError):
    """Network namespaces cannot be made here; the message says why."""


def _run(argv: list[str], *, check: bool = True, timeout: float = 20.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def preflight() -> list[str]:
    """What stops this machine from making the lab (empty: nothing)."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("not root (network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            problems.append(f"no `{tool}` (iproute2) on PATH")
    if not Path("/dev/net/tun").exists():
        problems.append("no /dev/net/tun (the TUN driver, for delay and loss)")
    if problems:
        return problems
    probe = f"chatdp-probe-{os.getpid()}-{secrets.token_hex(2)}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        problems.append(f"`ip netns add` failed: {done.stderr.strip()}")
    else:
        veth = subprocess.run(
            ["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
            capture_output=True,
            text=True,
        )
        if veth.returncode != 0:
            problems.append(f"no veth pairs: {veth.stderr.strip()}")
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return problems


def netem_available() -> bool:
    """Whether `tc qdisc ... netem` works in this kernel (tried on a throwaway namespace)."""
    if shutil.which("tc") is None or os.geteuid() != 0:
        return False
    probe = f"chatdp-netem-{os.getpid()}-{secrets.token_hex(2)}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return False
    try:
        subprocess.run(["ip", "-n", probe, "link", "set", "lo", "up"], capture_output=True)
        done = subprocess.run(
            ["tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True,
        )
        return done.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def enter_namespace(path: Path) -> None:
    """Moves this process's only thread into the network namespace at `path`: every socket
    it opens afterwards, and every thread and child it starts, lives there."""
    if threading.active_count() != 1:
        raise RuntimeError("enter a namespace before any thread is started")
    setns = getattr(os, "setns", None)  # Python 3.12+
    fd = os.open(path, os.O_RDONLY)
    try:
        if setns is not None:
            setns(fd, _CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


@dataclass
class Impairment:
    """Delay and loss between two hosts, while its relay runs."""

    a: str
    b: str
    delay_ms: float
    jitter_ms: float
    loss: float
    table: int
    device: str
    relay: subprocess.Popen[str]
    rules: list[list[str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Lab:
    """The switch and the named hosts, made by `build()` and removed by `destroy()`."""

    def __init__(self, hosts: Iterable[str], *, tag: str | None = None) -> None:
        self.hosts = {name: index for index, name in enumerate(hosts, start=1)}
        if any(len(name) > 12 or not name.isalnum() for name in self.hosts):
            raise ValueError("host names are short and alphanumeric")
        self.prefix = f"chatdp-{os.getpid()}-{tag or secrets.token_hex(3)}-"
        self.made: list[str] = []
        self.cuts: set[frozenset[str]] = set()
        self.impairments: dict[frozenset[str], Impairment] = {}
        self._destroyed = False
        self._tables = _IMPAIR_TABLE

    # ---- names -------------------------------------------------------------------------------

    def ns(self, host: str) -> str:
        return self.prefix + host

    def addr(self, host: str) -> str:
        return f"{SUBNET}.{self.hosts[host]}.2"

    def netns_path(self, host: str) -> Path:
        return NETNS_DIR / self.ns(host)

    def exec(self, host: str, argv: list[str]) -> list[str]:
        """`argv` as a command that runs inside `host`."""
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def _sw(self, *argv: str, check: bool = True) -> str:
        return _run(["ip", "-n", self.ns("sw"), *argv], check=check)

    # ---- building ------------------------------------------------------------------------------

    def build(self) -> None:
        for name in ("sw", *self.hosts):
            _run(["ip", "netns", "add", self.ns(name)])
            self.made.append(self.ns(name))
            _run(["ip", "-n", self.ns(name), "link", "set", "lo", "up"])
        self.sysctl("sw", "net.ipv4.ip_forward", "1")
        self.sysctl("sw", "net.ipv4.conf.all.rp_filter", "0")
        self.sysctl("sw", "net.ipv4.conf.default.rp_filter", "0")
        for host, index in self.hosts.items():
            ns, port = self.ns(host), f"to-{host}"
            _run(
                ["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                 "peer", "name", port, "netns", self.ns("sw")]
            )  # fmt: skip
            _run(["ip", "-n", ns, "addr", "add", f"{SUBNET}.{index}.2/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "route", "add", "default", "via", f"{SUBNET}.{index}.1"])
            self._sw("addr", "add", f"{SUBNET}.{index}.1/24", "dev", port)
            self._sw("link", "set", port, "up")

    def sysctl(self, host: str, key: str, value: str) -> None:
        """Sets a network sysctl of `host`'s namespace."""
        path = "/proc/sys/" + key.replace(".", "/")
        _run(self.exec(host, ["sh", "-c", f"echo {value} > {path}"]))

    # ---- faults --------------------------------------------------------------------------------

    def _cut_rules(self, a: str, b: str) -> list[list[str]]:
        return [
            ["from", self.addr(x), "to", self.addr(y), "blackhole", "pref", str(_CUT_PREF)]
            for x, y in ((a, b), (b, a))
        ]

    def cut(self, a: str, b: str) -> None:
        """Every packet between `a` and `b` is dropped, both ways, without a word."""
        pair = frozenset((a, b))
        if pair in self.cuts:
            return
        for rule in self._cut_rules(a, b):
            self._sw("rule", "add", *rule)
        self.cuts.add(pair)
        self._flush()

    def heal(self, a: str, b: str) -> None:
        pair = frozenset((a, b))
        if pair not in self.cuts:
            return
        for rule in self._cut_rules(a, b):
            self._sw("rule", "del", *rule, check=False)
        self.cuts.discard(pair)
        self._flush()

    def _flush(self) -> None:
        self._sw("route", "flush", "cache", check=False)

    def impair(
        self, a: str, b: str, *, delay_ms: float, jitter_ms: float = 0.0, loss: float = 0.0,
        seed: int = 0,
    ) -> Impairment:  # fmt: skip
        """Packets between `a` and `b`, both ways, held `delay_ms` ± `jitter_ms` and dropped
        with probability `loss`, until `restore(a, b)`."""
        pair = frozenset((a, b))
        if pair in self.impairments:
            raise RuntimeError(f"{a}-{b} is impaired already")
        self._tables += 1
        table, device = self._tables, f"imp{self._tables}"
        relay = subprocess.Popen(
            self.exec(
                "sw",
                [
                    sys.executable, "-m", "chatd.proof.impair", "--device", device,
                    "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
                    "--loss", str(loss), "--seed", str(seed),
                ],
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert relay.stdout is not None
        line = relay.stdout.readline().strip()
        if line != "ready":
            relay.kill()
            _, err = relay.communicate(timeout=5)
            raise RuntimeError(f"the delay relay did not start: {line} {err.strip()}")
        impairment = Impairment(a, b, delay_ms, jitter_ms, loss, table, device, relay)
        self.impairments[pair] = impairment
        self._sw("route", "add", "default", "dev", device, "table", str(table))
        for x, y in ((a, b), (b, a)):
            rule = [
                "iif", f"to-{x}", "from", self.addr(x), "to", self.addr(y),
                "lookup", str(table), "pref", str(_IMPAIR_PREF),
            ]  # fmt: skip
            self._sw("rule", "add", *rule)
            impairment.rules.append(rule)
        self._flush()
        return impairment

    def restore(self, a: str, b: str) -> Impairment | None:
        """Ends the impairment between `a` and `b`; it, with the relay's counts."""
        impairment = self.impairments.pop(frozenset((a, b)), None)
        if impairment is None:
            return None
        for rule in impairment.rules:
            self._sw("rule", "del", *rule, check=False)
        self._sw("route", "flush", "table", str(impairment.table), check=False)
        self._flush()
        relay = impairment.relay
        if relay.poll() is None:
            relay.send_signal(signal.SIGTERM)
        try:
            out, _ = relay.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            relay.kill()
            out, _ = relay.communicate()
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            if value.isdigit():
                impairment.counts[key] = int(value)
        return impairment

    def clear_faults(self) -> None:
        """Heals every cut and ends every impairment."""
        for pair in list(self.cuts):
            self.heal(*sorted(pair))
        for pair in list(self.impairments):
            self.restore(*sorted(pair))

    # ---- the end -------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Ends every process inside the lab's namespaces (this one excepted) and deletes
        them. Idempotent."""
        if self._destroyed:
            return
        self._destroyed = True
        for impairment in self.impairments.values():
            with contextlib.suppress(OSError):
                impairment.relay.kill()
        self.impairments.clear()
        me = os.getpid()
        for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.5)):
            pids = {pid for name in self.made for pid in self._pids(name)} - {me}
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + pause
            while pids and time.monotonic() < deadline:
                pids = {pid for pid in pids if _alive(pid)}
                time.sleep(0.05)
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        self.made.clear()

    @staticmethod
    def _pids(name: str) -> set[int]:
        done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        return {int(p) for p in done.stdout.split() if p.isdigit()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not reaped yet counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
