"""Programs that print figures about chatd's promises, most against a real `chatd serve`:

    python -m chatd.proof.crash --cycles 50     kill -9 under load, then prove the log whole
    python -m chatd.proof.slow_reader           a stuck reader among 1000 and everyone's p99
    python -m chatd.proof.soak                  minutes of steady load: WAL, RSS, p99 flat?
    python -m chatd.proof.filter_speed          the contacts filter's cost per message
    python -m chatd.proof.races                 a thousand copies of one decision, two nodes
    python -m chatd.proof.http_flood            an HTTP flood beside a chat: does it hold?
    python -m chatd.proof.partitions            two nodes, PostgreSQL and Redis in network
                                                namespaces: cuts, delay and loss, heals
    python -m chatd.proof.reconnect_storm       1000 clients of a killed node back at once
                                                on the other: synced when, missed, doubled
    python -m chatd.proof.long_run              half an hour of messages, reads, searches,
                                                returns and reconnects: does anything grow?

They talk to the server over its wire contract and read its database only after a crash
(`races` reads it while the nodes run, to check their answers against the log, and
`partitions` after each scenario, to check the acks and what every client received);
`filter_speed` times the domain's contacts filter in process.
"""
