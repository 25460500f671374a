"""The chatd wire contract in code: frames, event kinds, codecs and codes (PROTOCOL.md), and
the log file that `chatd export` writes and `chatd replay` reads (`logfile.py`)."""

PROTOCOL_VERSION = 1
