"""The ``certmint`` command line: run, inspect, status, renew, rotate-ca, convert."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from certmint.api import resources
from certmint.cli import convert_cmd
from certmint.core import secret_format, status
from certmint.k8s import kube, leader
from certmint.pki import claims, errors, extensions
from certmint.runtime import logs, settings

#: The values of `certmint.runtime.metrics.PerCertificate`, without importing it (and
#: prometheus_client) for every command.
PER_CERTIFICATE_METRICS = ("attention", "all", "none")
T = TypeVar("T")


def _object_ref(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not namespace or not name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, got {text!r}")
    return namespace, name


def _seconds(text: str) -> timedelta:
    return timedelta(seconds=float(text))


def _claims_oids(text: str) -> claims.ClaimsOids:
    try:
        return extensions.claims_oids(text)
    except errors.PKIError as err:
        raise argparse.ArgumentTypeError(err.message) from None


_CLAIMS_OID_HELP = (
    "OID of the claims extension, e.g. one under your Private Enterprise Number; replaces "
    f"certmint's ({claims.CLAIMS_OID.dotted_string}) for writing and reading"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certmint", description=__doc__)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    _add_inspect(commands)
    _add_certificate_commands(commands)
    _add_rotate_ca(commands)
    convert_cmd.add_parser(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch NS (repeat)")
    scope.add_argument(
        "--namespace-selector",
        metavar="KEY=VALUE",
        help="serve the namespaces whose labels match key=value[,key=value] (a shard)",
    )
    run.add_argument("--metrics-port", type=int, default=9403)
    run.add_argument("--metrics-address", default="0.0.0.0")  # noqa: S104 -- probes from the node
    run.add_argument(
        "--per-certificate-metrics",
        choices=PER_CERTIFICATE_METRICS,
        default="attention",
        help="which Certificates get per-certificate series: those needing attention "
        "(not Ready, renewal due or overdue, expired), all, or none (aggregates only)",
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--verbose", action="store_true")
    run.add_argument("--workers", type=int, default=settings.Settings.workers)
    _add_budgets(run)
    run.add_argument(
        "--retry-base", type=_seconds, default=settings.Settings.retry_base,
        help="first delay after a failed issuance, seconds",
    )  # fmt: skip
    run.add_argument(
        "--retry-cap", type=_seconds, default=settings.Settings.retry_cap,
        help="longest delay between failed issuances, seconds",
    )  # fmt: skip
    run.add_argument(
        "--issuer-resync", type=_seconds, default=settings.Settings.issuer_resync,
        help="how often a ready issuer re-reads its CA Secret, seconds",
    )  # fmt: skip
    run.add_argument("--lease-duration", type=float, default=15.0, help="leader Lease, seconds")
    run.add_argument("--identity", default="", help="leader-election identity (default: host)")
    run.add_argument(
        "--manage-cluster-issuers",
        action="store_true",
        help="with --namespace-selector: this shard writes ClusterIssuers' status, CAs and "
        "trust (exactly one shard should); the others only sign with their CAs",
    )
    run.add_argument(
        "--lease-name",
        help="leader Lease in $CERTMINT_NAMESPACE: one per shard (default: certmint-leader, "
        "with --namespace-selector certmint-leader-<values>)",
    )
    run.add_argument(
        "--claims-oid", type=_claims_oids, default=claims.DEFAULT_OIDS, help=_CLAIMS_OID_HELP
    )


def _add_budgets(run: argparse.ArgumentParser) -> None:
    """The rates that protect the API server: scheduled re-issues and Normal Events."""
    # 50/s: a CA rotation's wave at 100,000 Certificates in about 33 minutes, unrelated
    # reads' p99 under 0.1 s on a 2-core control plane (docs/performance.md, Re-issue wave).
    run.add_argument(
        "--renewal-rate", type=float, default=50.0,
        help="scheduled re-issues (renewals, CA rotation) per second",
    )  # fmt: skip
    run.add_argument("--renewal-burst", type=int, default=settings.Settings.renewal_burst)
    run.add_argument(
        "--event-qps", type=float, default=settings.Settings.event_qps,
        help="Normal Events (Issued, Renewed) per second past the burst; 0: no limit",
    )  # fmt: skip
    run.add_argument("--event-burst", type=int, default=settings.Settings.event_burst)


def _add_inspect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser("inspect", help="decode a certificate or a certmint Secret")
    source = inspect.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a PEM file")
    source.add_argument("-s", "--secret", type=_object_ref, help="NAMESPACE/SECRET")
    inspect.add_argument("--json", action="store_true")
    inspect.add_argument(
        "--claims-oid", type=_claims_oids, default=claims.DEFAULT_OIDS, help=_CLAIMS_OID_HELP
    )


def _add_certificate_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    status_ = commands.add_parser("status", help="what a Certificate is waiting for")
    status_.add_argument("certificate", type=_object_ref, help="NAMESPACE/NAME")
    status_.add_argument("--json", action="store_true")
    renew = commands.add_parser("renew", help="ask for one immediate re-issue")
    renew.add_argument("certificate", type=_object_ref, help="NAMESPACE/NAME")


def _add_rotate_ca(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = commands.add_parser("rotate-ca", help="start a CA rotation now")
    rotate.add_argument("issuer", help="NAMESPACE/ISSUER for an Issuer, or CLUSTERISSUER")
    rotate.add_argument(
        "--emergency",
        action="store_true",
        help="activate at once and stop trusting every older root (a compromised key)",
    )


def _call(args: argparse.Namespace, call: Callable[[kube.Kube], Awaitable[T]]) -> T:
    """Makes one API call on a connection of its own, closed afterwards."""

    async def calling() -> T:
        async with kube.connect(args.kubeconfig, args.context) as api:
            return await call(api)

    return asyncio.run(calling())


def command_run(args: argparse.Namespace) -> int:
    # Imported here: inspect, status and renew start faster without aiohttp and the runtime.
    from certmint.runtime import metrics, runner, shard  # noqa: PLC0415

    logs.configure(args.log_format, args.verbose)
    config = settings.Settings(
        operator_namespace=os.environ.get("CERTMINT_NAMESPACE", "certmint-system"),
        workers=args.workers,
        renewal_rate=args.renewal_rate,
        renewal_burst=args.renewal_burst,
        event_qps=args.event_qps,
        event_burst=args.event_burst,
        retry_base=args.retry_base,
        retry_cap=args.retry_cap,
        issuer_resync=args.issuer_resync,
        claims_oid=args.claims_oid.write,
        manage_cluster_issuers=args.namespace_selector is None or args.manage_cluster_issuers,
    )
    options = runner.Options(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace),
        metrics_address=args.metrics_address,
        metrics_port=args.metrics_port,
        per_certificate_metrics=metrics.PerCertificate(args.per_certificate_metrics),
        settings=config,
        lease_duration=args.lease_duration,
        identity=args.identity,
        lease_name=args.lease_name or leader.DEFAULT_LEASE_NAME,
    )
    if args.namespace_selector is None:
        return asyncio.run(runner.run(options))
    try:
        selector = shard.Selector.parse(args.namespace_selector)
    except ValueError as err:
        print(f"certmint run: --namespace-selector: {err}", file=sys.stderr)
        return 2
    options = dataclasses.replace(
        options, lease_name=args.lease_name or selector.lease_name, cluster_issuers=True
    )

    def serve(namespaces: tuple[str, ...]) -> Coroutine[Any, Any, int]:
        return runner.run(dataclasses.replace(options, namespaces=namespaces))

    configuration = shard.load_configuration(args.kubeconfig)
    return asyncio.run(shard.run(configuration, selector, serve))


def command_inspect(args: argparse.Namespace) -> int:
    from certmint.cli import inspect_cmd  # noqa: PLC0415 -- only this command needs it

    now = datetime.now(UTC)
    if args.secret:
        body = _call(args, lambda api: api.get_secret(*args.secret))
        if body is None:
            print(f"Secret {args.secret[0]}/{args.secret[1]} not found", file=sys.stderr)
            return 1
        data = {
            key: base64.b64decode(value)
            for key, value in (body.get("data") or {}).items()
            if key in (secret_format.TLS_CRT, secret_format.CA_CRT)
        }
        text, code = inspect_cmd.run(None, data, args.json, now, claims_oids=args.claims_oid)
    else:
        text, code = inspect_cmd.run(
            str(Path(args.file)), None, args.json, now, claims_oids=args.claims_oid
        )
    print(text)
    return code


def describe_status(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What a Certificate waits for, from its status (pure, for `certmint status`)."""
    current = body.get("status") or {}
    ready = status.find_condition(current, "Ready") or {}
    renewal = status.parse_timestamp(current.get("renewalTime"))
    waiting: str
    if ready.get("status") == "True" and renewal is not None:
        waiting = f"renewal at {status.timestamp(renewal)} (in {renewal - now})"
    elif ready:
        waiting = f"{ready.get('reason')}: {ready.get('message')}"
    else:
        waiting = "the operator has not reconciled it yet"
    return {
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "waitingFor": waiting,
        "identity": current.get("identity"),
        "serialNumber": current.get("serialNumber"),
        "notAfter": current.get("notAfter"),
        "renewalTime": current.get("renewalTime"),
        "revision": current.get("revision"),
        "failedIssuanceAttempts": current.get("failedIssuanceAttempts", 0),
        "lastFailureTime": current.get("lastFailureTime"),
    }


def command_status(args: argparse.Namespace) -> int:
    namespace, name = args.certificate
    body = _call(args, lambda api: api.get_object("Certificate", namespace, name))
    if body is None:
        print(f"Certificate {namespace}/{name} not found", file=sys.stderr)
        return 1
    summary = describe_status(body, datetime.now(UTC))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(len(key) for key in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value if value is not None else '-'}")
    return 0


def command_renew(args: argparse.Namespace) -> int:
    namespace, name = args.certificate
    # Microseconds: two requests within one second are still two requests.
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        _call(
            args,
            lambda api: api.patch_annotations(
                "Certificate", namespace, name, {resources.ANNOTATION_RENEW_REQUEST: requested}
            ),
        )
    except kube.NotFoundError:
        print(f"Certificate {namespace}/{name} not found", file=sys.stderr)
        return 1
    print(f"requested a re-issue of {namespace}/{name} at {requested}")
    return 0


def command_rotate_ca(args: argparse.Namespace) -> int:
    namespace, _, name = args.issuer.rpartition("/")
    kind = "Issuer" if namespace else "ClusterIssuer"
    where = f"{kind} {args.issuer}"
    body = _call(args, lambda api: api.get_object(kind, namespace or None, name))
    if body is None:
        print(f"{where} not found", file=sys.stderr)
        return 1
    if not ((body.get("spec") or {}).get("ca") or {}).get("generate"):
        print(
            f"{where} signs with a user-managed CA: replace its CA Secret to rotate; certmint "
            "keeps the old root in the trust bundle until its leaves expire and re-issues them",
            file=sys.stderr,
        )
        return 1
    requested = status.timestamp(datetime.now(UTC))
    annotations = {
        resources.ANNOTATION_ROTATE_REQUEST: requested,
        resources.ANNOTATION_ROTATE_EMERGENCY: "true" if args.emergency else "false",
    }
    _call(args, lambda api: api.patch_annotations(kind, namespace or None, name, annotations))
    when = "now, distrusting older roots" if args.emergency else "when safe"
    print(f"requested a CA rotation of {where} at {requested}: prepare now, activate {when}")
    return 0


COMMANDS = {
    "run": command_run,
    "inspect": command_inspect,
    "status": command_status,
    "renew": command_renew,
    "rotate-ca": command_rotate_ca,
    "convert": convert_cmd.command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except kube.KubeError as err:
        print(f"certmint: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
