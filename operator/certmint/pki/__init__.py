"""The pure PKI core: keys, CAs, issuing, verification, renewal timing, claims.

Nothing here talks to Kubernetes, kopf or Prometheus (an import-linter contract keeps it
so); `now` is always passed in. Import the modules, not names:
``from certmint.pki import issuing`` then ``issuing.issue(...)``.
"""
