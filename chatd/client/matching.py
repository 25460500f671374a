"""What an expectation compares: a subset of a frame, and a readable diff when it fails.

Tables match as subsets (every expected key, recursively), lists element by element with
the same length, anything else by equality.

>>> got = {"kind": "return.approved", "seq": 3, "data": {"claim": "r1", "mode": "pvz"}}
>>> mismatches({"kind": "return.approved", "data": {"mode": "no_return"}}, got)
['data.mode: expected "no_return", got "pvz"']
>>> print(diff({"kind": "a", "text": "x"}, {"kind": "a", "text": "y", "seq": 1}))
--- expected
+++ received
@@ -1,4 +1,4 @@
 {
   "kind": "a",
-  "text": "x"
+  "text": "y"
 }
"""

from __future__ import annotations

import difflib
import json
from typing import Any

MISSING = "<missing>"


def matches(expected: Any, got: Any) -> bool:
    return not mismatches(expected, got)


def mismatches(expected: Any, got: Any, path: str = "") -> list[str]:
    """Every place where `got` differs from `expected`, as "path: expected X, got Y"."""
    where = path or "value"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected a table, got {_show(got)}"]
        found: list[str] = []
        for key, value in expected.items():
            inner = f"{path}.{key}" if path else str(key)
            if key not in got:
                found.append(f"{inner}: expected {_show(value)}, got nothing")
            else:
                found.extend(mismatches(value, got[key], inner))
        return found
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{where}: expected {_show(expected)}, got {_show(got)}"]
        found = []
        for index, (want, have) in enumerate(zip(expected, got, strict=True)):
            found.extend(mismatches(want, have, f"{path}[{index}]"))
        return found
    if isinstance(expected, bool) or isinstance(got, bool):
        same = expected is got
    else:
        same = expected == got
    return [] if same else [f"{where}: expected {_show(expected)}, got {_show(got)}"]


def project(expected: Any, got: Any) -> Any:
    """`got` cut down to the keys `expected` names: what the diff shows."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return {k: project(v, got[k]) if k in got else MISSING for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [project(want, have) for want, have in zip(expected, got, strict=True)]
    return got


def diff(expected: Any, got: Any) -> str:
    """A unified diff of the expected subset and the same keys of what was received."""
    want = _pretty(expected).splitlines()
    have = _pretty(project(expected, got)).splitlines()
    lines = difflib.unified_diff(want, have, "expected", "received", lineterm="")
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 160 else text[:159] + "…"
