"""The integration tests' fixtures are in tests/conftest.py (shared with tests/interop).

Only names, never fixtures, are re-exported here for the modules that import them: a
fixture defined in two conftest files would start a second control plane and operator.
"""

from tests.conftest import BIN, CLUSTER, LOCAL, ROOT, Kubectl

__all__ = ["BIN", "CLUSTER", "LOCAL", "ROOT", "Kubectl"]
