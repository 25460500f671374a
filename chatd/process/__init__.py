"""Turning the library into a running process: the `chatd` command (`cli.py`), building a
server from its settings (`assemble.py`), running it under uvicorn (`server.py`), the demo
data (`demo.py`) and `chatd export` (`export.py`)."""
