"""Load testing of chatd: message logs (export format, synthetic logs), their replay over real
sockets, `chatd bench` against a floor relay, and the reports.

Imports `protocol`, `chatd.client` and `chatd.launcher` only, never the server: everything
here talks to a running chatd over its wire contract, as an outside program would.
"""
