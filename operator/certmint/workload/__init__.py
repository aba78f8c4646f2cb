"""certmint's workload library: mutual TLS that follows rotation, and authorization.

Standard-library `ssl` plus `cryptography`; the aiohttp and ASGI adapters live in
`certmint.workload.aiohttp` and `certmint.workload.asgi` and import their frameworks
only when imported themselves.

A service in a few lines::

    from certmint import workload

    credentials = workload.load("/var/run/secrets/certmint")
    policy = workload.Authorizer(
        workload.allow(identity="spiffe://cluster.local/ns/web/*"),
        workload.allow(claims={"role": "reader"}),
    )
    server_context = credentials.server_context()   # give it to your server
    ...
    peer = credentials.peer(tls_socket)              # after the handshake
    decision = policy.authorize(peer)

See ``docs/workload.md`` for what is verified and what is not.
"""

from certmint.workload.authz import Authorizer, Decision, NotAuthorizedError, Rule, allow
from certmint.workload.credentials import Credentials, load
from certmint.workload.errors import CredentialsError, PeerError, WorkloadError
from certmint.workload.peers import Peer, peer, peer_from_certificate

__all__ = [
    "Authorizer",
    "Credentials",
    "CredentialsError",
    "Decision",
    "NotAuthorizedError",
    "Peer",
    "PeerError",
    "Rule",
    "WorkloadError",
    "allow",
    "load",
    "peer",
    "peer_from_certificate",
]
