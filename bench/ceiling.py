"""The API ceiling: how fast this API server and etcd take the writes a Certificate needs.

No operator, no crypto, no watch: every Secret body is prepared before the clock starts
(one pre-signed ECDSA P-256 leaf and key, the same size certmint writes), and an
asynchronous writer (aiohttp, one connection per concurrent request) does only the two
writes that cannot be avoided per Certificate:

1. create the ``kubernetes.io/tls`` Secret;
2. merge-patch the Certificate's status to Ready.

The Certificates must exist before the run (the benchmark creates them untimed, in a
namespace no operator watches). The writer first probes a few concurrency levels on
small slices of the names, keeps the fastest, and writes the rest at that level: the
rate of that last part is the ceiling. certmint's throughput is reported as a ratio of
it (``ratio_to_api_ceiling`` in ``bench/results.json``).

Run alone: ``python bench/ceiling.py --kubeconfig K --namespace NS --names c0 c1 ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from bench import floor
from kubernetes import client, config

#: Concurrency levels tried, each on its own slice of the names.
CANDIDATES = (8, 16, 32, 64)
#: Share of the names spent on probing (at least a slice of 50 per candidate).
PROBE_SHARE = 0.25
CERTIFICATES = "/apis/certmint.io/v1alpha1/namespaces/{namespace}/certificates/{name}/status"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"


class Writer:
    """Writes prepared Secrets and status patches for one namespace."""

    def __init__(self, configuration: client.Configuration, namespace: str) -> None:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        headers = {"Content-Type": "application/json"}
        if token := configuration.api_key.get("authorization"):
            headers["Authorization"] = token
        self._host = configuration.host.rstrip("/")
        self._context = context
        self._headers = headers
        self.namespace = namespace
        ca = floor.generate_ca(_now())
        certificate_pem, key_pem = floor.issue_leaf(ca, f"ceiling.{namespace}.svc", _now())
        self._secret = (certificate_pem, key_pem, ca.certificate_pem)
        self._patch = json.dumps(floor.status_patch(_now())).encode()

    def _bodies(self, names: Sequence[str]) -> list[tuple[str, bytes]]:
        return [
            (name, json.dumps(floor.secret_body(self.namespace, name, *self._secret)).encode())
            for name in names
        ]

    async def write(self, names: Sequence[str], concurrency: int) -> dict[str, Any]:
        """Writes both objects for every name; returns the rate and the failures."""
        bodies = self._bodies(names)  # prepared before the clock starts
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for item in bodies:
            queue.put_nowait(item)
        failures: dict[str, str] = {}
        connector = aiohttp.TCPConnector(ssl=self._context, limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=self._headers) as session:
            started = time.monotonic()
            workers = [self._drain(session, queue, failures) for _ in range(concurrency)]
            await asyncio.gather(*workers)
            seconds = time.monotonic() - started
        done = len(names) - len(failures)
        return {
            "concurrency": concurrency,
            "certificates": len(names),
            "seconds": round(seconds, 3),
            "certs_per_second": round(done / seconds, 1) if seconds > 0 else None,
            "failures": len(failures),
            "first_failure": next(iter(failures.values()), None),
        }

    async def _drain(
        self,
        session: aiohttp.ClientSession,
        queue: asyncio.Queue[tuple[str, bytes]],
        failures: dict[str, str],
    ) -> None:
        while not queue.empty():
            name, secret = queue.get_nowait()
            try:
                await self._one(session, name, secret)
            except (aiohttp.ClientError, RuntimeError) as err:
                failures[name] = f"{type(err).__name__}: {str(err)[:200]}"

    async def _one(self, session: aiohttp.ClientSession, name: str, secret: bytes) -> None:
        create = self._host + SECRETS.format(namespace=self.namespace)
        async with session.post(create, data=secret) as response:
            if response.status != 201:
                raise RuntimeError(f"Secret create answered {response.status}")
        patch = self._host + CERTIFICATES.format(namespace=self.namespace, name=name)
        headers = {"Content-Type": "application/merge-patch+json"}
        async with session.patch(patch, data=self._patch, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"status patch answered {response.status}")


def plan_slices(
    names: Sequence[str], candidates: Sequence[int] = CANDIDATES
) -> tuple[list[tuple[int, Sequence[str]]], Sequence[str]]:
    """Splits the names into one probe slice per candidate and the rest for the measurement."""
    size = max(50, int(len(names) * PROBE_SHARE) // len(candidates))
    if size * len(candidates) >= len(names) // 2:
        return [], names  # too few names to probe: measure once at a middle level
    probes = [(c, names[i * size : (i + 1) * size]) for i, c in enumerate(candidates)]
    return probes, names[size * len(candidates) :]


async def measure(
    configuration: client.Configuration, namespace: str, names: Sequence[str]
) -> dict[str, Any]:
    """Probes, then measures the ceiling on the remaining names."""
    writer = Writer(configuration, namespace)
    probes, rest = plan_slices(names)
    tried = [await writer.write(slice_, concurrency) for concurrency, slice_ in probes]
    best = max(tried, key=lambda probe: probe["certs_per_second"] or 0.0, default=None)
    concurrency = best["concurrency"] if best else CANDIDATES[len(CANDIDATES) // 2]
    final = await writer.write(rest, concurrency)
    return {
        "api_ceiling_certs_per_second": final["certs_per_second"],
        "concurrency": concurrency,
        "probes": tried,
        "measured": final,
        "failures": final["failures"] + sum(probe["failures"] for probe in tried),
    }


def run(kubeconfig: str, namespace: str, names: Sequence[str]) -> Mapping[str, Any]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return asyncio.run(measure(configuration, namespace, names))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--names", nargs="+", required=True)
    args = parser.parse_args()
    json.dump(run(args.kubeconfig, args.namespace, args.names), sys.stdout, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
