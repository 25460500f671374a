"""The optional parts of chatd and the extras that install them.

`pip install chatd` is the SQLite server and the SDK. PostgreSQL, Redis and the load tester
each need a library that only their users want, so those come with an extra
(`chatd[postgres]`, `chatd[redis]`, `chatd[loadtest]`) and are imported only once that
choice is made. Whoever makes the choice asks `missing_extra` first, so a machine without
the library is told what to install instead of showing an ImportError's traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Final

# The module each extra brings, by the extra's name in pyproject.toml.
EXTRA_MODULES: Final = {
    "postgres": "asyncpg",
    "redis": "redis",
    "loadtest": "hdrh",
}


def missing_extra(extra: str) -> str | None:
    """None when the extra's library can be imported; else what to install, for the user."""
    module = EXTRA_MODULES[extra]
    if importlib.util.find_spec(module) is not None:
        return None
    return f"the Python package {module!r} is not installed: pip install 'chatd[{extra}]'"
