"""Everything certmint decides, as pure functions over parsed resources and the store.

Policy, readiness, the outcome of a reconciliation, CA rotation plans, status documents,
Secret and trust-bundle bodies, and the in-memory store the watches feed. No I/O: the
runtime gathers, calls in here, and performs what comes back.
"""
