"""`chatd.client` imports `protocol` and itself, never the server (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "chatd" / "client"


def test_the_client_never_imports_the_server() -> None:
    offending = []
    for path in CLIENT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "chatd" and not name.startswith("chatd.client"):
                    offending.append(f"{path.relative_to(CLIENT)}: {name}")
    assert offending == []
