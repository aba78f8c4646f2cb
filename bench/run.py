"""``make bench``: N Certificates issued by certmint, measured against this machine's floor.

Everything runs against a real local control plane (etcd + kube-apiserver):

0. **API ceiling.** ``bench/ceiling.py`` (a separate process, no crypto: its Secret
   bodies are prepared in advance) first probes its best concurrency on Certificates
   created untimed in a probe namespace (the *writes-only* rate); then N Certificates are
   created in a fresh namespace exactly as in the certmint phase, each name handed to it as
   its create returns, and it does the two unavoidable writes (Secret create, status
   patch). The same watch times Ready. The most this API server and etcd take of the very
   workload certmint gets; certmint is reported as ``ratio_to_api_ceiling``.
1. **Floor.** N Certificates are created in a fresh namespace while no operator runs;
   ``bench/floor.py`` (a separate process) receives each name as soon as its create
   returns and issues it with the least possible work; the same watch times Ready.
   Afterwards those Certificates and Secrets are deleted with two collection deletes, so
   the operator never sees them.
2. **certmint.** ``certmint run -A`` starts as a separate process, generates the
   ClusterIssuer's CA and settles. Then N Certificates are created in another fresh
   namespace, in the same way and at the same pace; a watch notes when each turns Ready.
3. **Steady state** (``--steady-seconds``): nothing changes; API writes and operator CPU
   are counted over a window.
4. **Re-issue wave** (``--wave``, off by default): an emergency CA rotation of the
   ClusterIssuer re-issues all N Certificates through the operator's renewal rate bound;
   ``bench/wave.py`` times it and measures the API server's latency for unrelated reads
   before and during it (``reissue_wave`` in results.json).
5. **Restart** (``--restart``): the operator is stopped (SIGTERM) and started again; the
   time until it has caught up (cache synced, every Certificate reconciled, queue empty)
   is measured, with the re-issues (revision changes) and API writes it made.

API writes are counted by the API server itself (``apiserver_request_total``, verbs
POST/PUT/PATCH/DELETE, diffed around each phase); the benchmark's own Certificate
creates are left out. CPU comes from ``/proc`` for every process involved, so the noise
from other work on the machine is reported as ``others`` CPU seconds.

Run: ``make bench N=1000`` or ``python -m bench.run --n 1000 --kubeconfig K`` (from the
repository root); the table goes to stdout and the numbers to ``bench/results.json``.

This module is the command line; the work is done by ``phases`` (the four phases),
``workload`` (creating and watching Certificates), ``cluster`` (the admin client and the
prepared cluster), ``api_writes`` (counting writes), ``machine`` (CPU, memory,
profiling), ``stats`` and ``report`` (the numbers, ``results.json`` and the table), and
the shared ``harness`` (the operator process and the control plane).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench import cluster, machine, phases, report, wave
from harness.control_plane import ControlPlane
from harness.operator_process import OperatorProcess
from kubernetes import client

RESULTS = Path(__file__).with_name("results.json")
T = TypeVar("T")


def done(phase: str, result: T) -> T:
    """Logs a phase's result as it ends: a long run that fails later keeps it (stderr)."""
    print(f"{phase} done: {json.dumps(result, default=str)}", file=sys.stderr)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepares the cluster, runs the phases that ``args`` ask for, returns results.json."""
    kubeconfig = Path(args.kubeconfig).resolve()
    plane = ControlPlane(kubeconfig.parent, kubeconfig)
    api = cluster.Api(kubeconfig, pool_size=max(args.create_concurrency, 8) + 4)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="certmint-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    bench = phases.Bench(
        api=api,
        kubeconfig=kubeconfig,
        n=args.n,
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        log_dir=log_dir,
        control_plane=plane.pids(),
        py_spy=args.py_spy,
        keep=args.keep,
    )
    info = machine.machine_info()
    print(f"certmint bench: N={args.n}, logs in {log_dir}", file=sys.stderr)
    cluster.prepare_cluster(api, plane)
    api_ceiling = None
    if not args.skip_ceiling:
        print("API ceiling: prepared writes, no operator ...", file=sys.stderr)
        api_ceiling = done("API ceiling", bench.api_ceiling())
    floor = None
    if not args.skip_floor:
        print("floor: issuing with the minimal script ...", file=sys.stderr)
        floor = done("floor", bench.floor())
    if args.skip_operator:
        info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
        return {"n": args.n, "api_ceiling": api_ceiling, "floor": floor, "machine": info}
    phase, extra = operator_phases(bench, args)
    extra["api_ceiling"] = api_ceiling
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    extra["machine"] = info
    extra["workers"] = args.workers
    extra["create_concurrency"] = args.create_concurrency
    extra["noise"] = (
        "other engineers share this machine: cpu_seconds.others is CPU used by processes "
        "outside the benchmark during the phase; compare runs only when it is small"
    )
    return report.results_document(phase, floor, extra)


def operator_phases(
    bench: phases.Bench, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """certmint issuing, then the steady state and the restart unless skipped.

    Returns:
        The issuing phase's summary, and the rest of results.json.
    """
    operator = OperatorProcess(
        bench.kubeconfig,
        bench.log_dir,
        options=(f"--workers={args.workers}", *args.operator_arg),
        profile=args.profile,
        stop_timeout=60.0,
    )
    namespace = f"bench-op-{bench.run_id}"
    extra: dict[str, Any] = {}
    try:
        print("certmint: issuing ...", file=sys.stderr)
        phase = done("certmint issuing", bench.operator_phase(operator, namespace))
        extra["operator_peak_rss_mb"] = phase.pop("operator_peak_rss_mb")
        extra["operator_cpu_seconds"] = phase.pop("operator_cpu_seconds")
        extra["cpu_seconds"] = phase.pop("cpu_seconds")
        extra["scrape_cpu_seconds"] = phase.pop("scrape_cpu_seconds")
        if args.steady_seconds > 0:
            print(f"steady state: {args.steady_seconds:.0f}s ...", file=sys.stderr)
            steady = bench.steady(operator, args.steady_seconds, args.scrape_every)
            extra["steady"] = done("steady state", steady)
        if args.wave:
            print("re-issue wave: emergency CA rotation ...", file=sys.stderr)
            extra["reissue_wave"] = done(
                "re-issue wave",
                wave.Wave(
                    api=bench.api,
                    operator=operator,
                    namespace=namespace,
                    n=bench.n,
                    control_plane=bench.control_plane,
                    operator_args=operator.options,
                    quiet_seconds=args.wave_quiet_seconds,
                ).measure(),
            )
        if args.restart:
            print("restart ...", file=sys.stderr)
            extra["restart"] = done("restart", bench.restart(operator, namespace))
    finally:
        operator.stop()
        if not args.keep:
            with contextlib.suppress(client.ApiException):
                bench.api.empty_namespace(namespace)
                bench.api.delete_namespace(namespace)
    return phase, extra


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000, help="Certificates per phase")
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig")
    parser.add_argument("--workers", type=int, default=16, help="operator --workers and floor")
    parser.add_argument("--create-concurrency", type=int, default=16)
    parser.add_argument("--steady-seconds", type=float, default=30.0, help="0 to skip")
    parser.add_argument(
        "--scrape-every", type=float, default=15.0, help="steady state: /metrics scrape interval"
    )
    parser.add_argument("--restart", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--wave",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="after issuing: an emergency CA rotation re-issues every Certificate, measured",
    )
    parser.add_argument(
        "--wave-quiet-seconds", type=float, default=20.0, help="reader baseline before the wave"
    )
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true", help="skip the API ceiling")
    parser.add_argument(
        "--skip-operator", action="store_true", help="only the references (ceiling, floor)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the Certificates in place (the ceiling's and floor's: with --skip-operator)",
    )
    parser.add_argument("--profile", type=Path, help="run the operator under pyinstrument")
    parser.add_argument(
        "--py-spy", type=Path, help="sample the operator while it issues (collapsed stacks)"
    )
    parser.add_argument(
        "--operator-arg", action="append", default=[], help="extra `certmint run` argument"
    )
    parser.add_argument("--log-dir", help="where operator logs go (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2) if args.skip_operator else report.table(results))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
