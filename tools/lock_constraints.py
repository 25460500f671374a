"""Writes the version locks from the packages installed in this venv.

    .venv/bin/python tools/lock_constraints.py           # rewrite the locks
    .venv/bin/python tools/lock_constraints.py --check   # exit 1 if they are out of date

Two pip constraints files, each `name==version` for every package of a set, dependencies of
dependencies included, as installed here:

- `constraints.txt`: what `chatd[postgres,redis]` runs on, the image's packages; the
  Dockerfile installs exactly these in a layer of their own, before the source;
- `constraints-dev.txt`: what `chatd[dev]` adds (the load tester, tests, linters), for
  `make install` and so for CI.

The sets are read from pyproject.toml, so a dependency added there and installed is locked
on the next run; `--check` (run by `make lint`) fails while a lock disagrees with the venv.
To move a version: install it in the venv, run this, and commit both files.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "chatd"
# The extras the image installs (docker-compose.yml runs PostgreSQL and Redis).
IMAGE_EXTRAS = ("postgres", "redis")
DEV_EXTRAS = ("dev",)
RUNTIME_FILE = ROOT / "constraints.txt"
DEV_FILE = ROOT / "constraints-dev.txt"
HEADER = (
    "# {what}\n"
    "# Exact versions, for Linux on CPython 3.11+. Written by tools/lock_constraints.py from the\n"
    "# venv; edit pyproject.toml and run it again rather than this file.\n"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(extras: Iterable[str]) -> list[Requirement]:
    """The project's requirements with `extras`, its own extras (`chatd[postgres]` inside
    `dev`) expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    found: list[Requirement] = [Requirement(text) for text in project["dependencies"]]
    wanted, seen = list(extras), set[str]()
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if canonical(requirement.name) == PROJECT:
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def installed_closure(roots: Iterable[Requirement]) -> dict[str, str]:
    """Every installed distribution `roots` need, transitively: canonical name -> version."""
    versions: dict[str, str] = {}
    queue = [r for r in roots if r.marker is None or r.marker.evaluate({"extra": ""})]
    done: set[tuple[str, frozenset[str]]] = set()
    while queue:
        requirement = queue.pop()
        key = (canonical(requirement.name), frozenset(requirement.extras))
        if key in done:
            continue
        done.add(key)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is not installed: run `make install` first")
        versions[key[0]] = distribution.version
        # A dependency counts when it belongs to no extra or to one this requirement asks for.
        contexts = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate(c) for c in contexts):
                queue.append(needed)
    return versions


def render(what: str, versions: dict[str, str]) -> str:
    lines = [f"{name}=={version}" for name, version in sorted(versions.items())]
    return HEADER.format(what=what) + "\n".join(lines) + "\n"


def locks() -> dict[Path, str]:
    runtime = installed_closure(project_requirements(IMAGE_EXTRAS))
    everything = installed_closure(project_requirements(DEV_EXTRAS))
    dev = {name: version for name, version in everything.items() if name not in runtime}
    return {
        RUNTIME_FILE: render(f"What chatd[{','.join(IMAGE_EXTRAS)}] runs on.", runtime),
        DEV_FILE: render("What chatd[dev] adds to constraints.txt.", dev),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = False
    for path, text in locks().items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if not args.check:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
            continue
        stale = True
        diff = difflib.unified_diff(
            current.splitlines(), text.splitlines(), str(path.name), "venv", lineterm=""
        )
        print("\n".join(diff), file=sys.stderr)
    if stale:
        print(
            "the locks disagree with the venv: run .venv/bin/python tools/lock_constraints.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
