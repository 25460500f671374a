"""The pure rules of chatd: no asyncio, no database, no clock (the time is passed in)."""
