"""Programs that print figures about chatd's promises, each against a real `chatd serve`:

    python -m chatd.proof.crash --cycles 50     kill -9 under load, then prove the log whole
    python -m chatd.proof.slow_reader           a stuck reader among 1000 and everyone's p99

They talk to the server over its wire contract and read its database only after a crash.
"""
