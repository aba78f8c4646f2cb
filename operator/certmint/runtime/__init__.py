"""The running operator: watch handlers, work queues, reconcilers and the process around them.

Thin executors: they gather from the store, call `certmint.core` to decide, and perform
the writes through `certmint.k8s`.
"""
