"""Drives certmint from the outside, for the integration tests and the benchmarks.

Not part of the shipped ``certmint`` package: ``tests/`` and ``bench/`` import it from the
repository root (pytest puts the root on ``sys.path``; ``make bench`` runs
``python -m bench.run`` from it).

- `harness.polling`: wait for a condition, with a deadline.
- `harness.operator_process`: ``certmint run`` as a subprocess (start, probe, scrape, stop).
- `harness.control_plane`: the local etcd + kube-apiserver of ``hack/cluster.py``, and the
  pinned kubectl against it.
"""
