"""Programs that print figures about chatd's promises, most against a real `chatd serve`:

    python -m chatd.proof.crash --cycles 50     kill -9 under load, then prove the log whole
    python -m chatd.proof.slow_reader           a stuck reader among 1000 and everyone's p99
    python -m chatd.proof.soak                  minutes of steady load: WAL, RSS, p99 flat?
    python -m chatd.proof.filter_speed          the contacts filter's cost per message

They talk to the server over its wire contract and read its database only after a crash;
`filter_speed` times the domain's contacts filter in process.
"""
