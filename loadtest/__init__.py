"""Load generator for the payment switch: `python -m loadtest --help`.

config (options) -> setup (accounts) -> processes/driver (load; workload makes the requests,
histogram and stats measure) -> verify (nothing acknowledged lost) -> report (table, JSON).
"""
