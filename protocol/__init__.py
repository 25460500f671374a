"""The chatd wire contract in code: frames, event kinds, codecs and codes (docs/protocol.md), and
the log file that `chatd export` writes and `chatd replay` reads (`logfile.py`)."""

PROTOCOL_VERSION = 1
# What `welcome.version` says: version 1.1 only adds to 1, so `welcome.protocol` stays 1 and
# a client written for 1 keeps working.
PROTOCOL_REVISION = "1.1"
