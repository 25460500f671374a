"""Runnable examples of the SDK; each has `async def main(url, secret)` and runs on its own
against a server given by CHATD_URL (default ws://127.0.0.1:8000/ws) and CHATD_SECRET."""
