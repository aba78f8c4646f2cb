"""The API ceiling: the most this API server and etcd take of the workload certmint gets.

No operator, no crypto, no watch of its own: every Secret body is prepared before the
clock starts (one pre-signed ECDSA P-256 leaf and key, the same size certmint writes; only
the name changes), and an asynchronous writer (aiohttp, one connection per concurrent
request) does only the two writes that cannot be avoided per Certificate:

1. create the ``kubernetes.io/tls`` Secret;
2. merge-patch the Certificate's status to Ready.

A run has two parts:

- *Probe* (untimed for the benchmark): on Certificates created in advance in
  ``--probe-namespace``, the writer tries each concurrency of ``CANDIDATES`` on its own
  slice and keeps the fastest. The best probe is the *writes-only* rate: the two writes
  alone, with nothing else asking the API server for anything.
- *The ceiling*: the writer prints ``ready`` and writes each name it reads on stdin, at the
  probed concurrency, as the benchmark creates the Certificates and hands their names over
  (exactly as certmint and the floor receive them, with the same Ready watch). So the
  ceiling carries the same creates and watch as the phase it is the reference for, and
  the ratio compares issuers, not workloads.

At the end it prints one JSON document: the concurrency, the probes, the failures.

Run alone: ``printf 'c00000\\n' | python -m bench.ceiling --kubeconfig K --namespace NS
--probe-namespace P --probe-count 200`` (the Certificates must exist).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from bench import floor
from kubernetes import client, config

#: Concurrency levels tried, each on its own slice of the probe names.
CANDIDATES = (8, 16, 32, 64)
CERTIFICATES = "/apis/certmint.io/v1alpha1/namespaces/{namespace}/certificates/{name}/status"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"
#: Stand for the Certificate's name and namespace in the prepared Secret body.
NAME_MARK, NAMESPACE_MARK = "@@name@@", "@@namespace@@"


def probe_count(n: int) -> int:
    """How many Certificates the probes need for a run of ``n``: a slice per candidate."""
    return len(CANDIDATES) * min(1000, max(50, n // 40))


def prepared_secret(template: str, namespace: str, name: str) -> bytes:
    """The Secret body for one Certificate, from the template with both marks."""
    return template.replace(NAME_MARK, name).replace(NAMESPACE_MARK, namespace).encode()


class Writer:
    """Writes prepared Secrets and status patches."""

    def __init__(self, configuration: client.Configuration) -> None:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        headers = {"Content-Type": "application/json"}
        if token := configuration.api_key.get("authorization"):
            headers["Authorization"] = token
        self._host = configuration.host.rstrip("/")
        self._context = context
        self._headers = headers
        ca = floor.generate_ca(_now())
        certificate_pem, key_pem = floor.issue_leaf(ca, "ceiling.bench.svc", _now())
        self._secret = json.dumps(
            floor.secret_body(
                NAMESPACE_MARK, NAME_MARK, certificate_pem, key_pem, ca.certificate_pem
            )
        )
        self._patch = json.dumps(floor.status_patch(_now())).encode()

    def session(self, concurrency: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._context, limit=concurrency)
        return aiohttp.ClientSession(connector=connector, headers=self._headers)

    async def probe(self, namespace: str, names: Sequence[str], concurrency: int) -> dict[str, Any]:
        """Writes both objects for every name at ``concurrency``; returns the rate."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        for name in [*names, *[None] * concurrency]:
            queue.put_nowait(name)
        failures: dict[str, str] = {}
        async with self.session(concurrency) as session:
            started = time.monotonic()
            await self.drain(session, namespace, queue, failures, concurrency)
            seconds = time.monotonic() - started
        done = len(names) - len(failures)
        return {
            "concurrency": concurrency,
            "certificates": len(names),
            "seconds": round(seconds, 3),
            "certs_per_second": round(done / seconds, 1) if seconds > 0 else None,
            "failures": len(failures),
        }

    async def drain(
        self,
        session: aiohttp.ClientSession,
        namespace: str,
        queue: asyncio.Queue[str | None],
        failures: dict[str, str],
        concurrency: int,
    ) -> None:
        """``concurrency`` writers take names from ``queue`` until each takes a None."""

        async def worker() -> None:
            while (name := await queue.get()) is not None:
                try:
                    await self._one(session, namespace, name)
                except (aiohttp.ClientError, RuntimeError) as err:
                    failures[name] = f"{type(err).__name__}: {str(err)[:200]}"

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def _one(self, session: aiohttp.ClientSession, namespace: str, name: str) -> None:
        create = self._host + SECRETS.format(namespace=namespace)
        secret = prepared_secret(self._secret, namespace, name)
        async with session.post(create, data=secret) as response:
            if response.status != 201:
                raise RuntimeError(f"Secret create answered {response.status}")
        patch = self._host + CERTIFICATES.format(namespace=namespace, name=name)
        headers = {"Content-Type": "application/merge-patch+json"}
        async with session.patch(patch, data=self._patch, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"status patch answered {response.status}")


async def probe(writer: Writer, namespace: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """Each candidate concurrency on its own slice of ``names``."""
    size = len(names) // len(CANDIDATES)
    return [
        await writer.probe(namespace, names[i * size : (i + 1) * size], concurrency)
        for i, concurrency in enumerate(CANDIDATES)
    ]


async def follow_stdin(writer: Writer, namespace: str, concurrency: int) -> dict[str, str]:
    """Writes each name read on stdin until its end; returns the failures by name."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            if name := line.strip():
                loop.call_soon_threadsafe(queue.put_nowait, name)
        for _ in range(concurrency):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    failures: dict[str, str] = {}
    async with writer.session(concurrency) as session:
        print("ready", flush=True)  # set up: the benchmark may start the clock
        threading.Thread(target=read, name="names", daemon=True).start()
        await writer.drain(session, namespace, queue, failures, concurrency)
    return failures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    writer = Writer(configuration)
    probe_names = [f"c{i:05d}" for i in range(args.probe_count)]
    tried = await probe(writer, args.probe_namespace, probe_names)
    best = max(tried, key=lambda result: result["certs_per_second"] or 0.0)
    failures = await follow_stdin(writer, args.namespace, best["concurrency"])
    return {
        "concurrency": best["concurrency"],
        "writes_only_certs_per_second": best["certs_per_second"],
        "probes": tried,
        "failures": len(failures) + sum(result["failures"] for result in tried),
        "first_failure": next(iter(failures.values()), None),
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True, help="where the measured names are")
    parser.add_argument("--probe-namespace", required=True)
    parser.add_argument("--probe-count", type=int, required=True, help="c00000, c00001, ...")
    json.dump(asyncio.run(run(parser.parse_args())), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
