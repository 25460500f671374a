"""The chatd wire contract in code: frames, event kinds, codecs and codes (PROTOCOL.md)."""

PROTOCOL_VERSION = 1
