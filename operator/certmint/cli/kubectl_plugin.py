"""``kubectl certmint``: the ``certmint`` commands with kubectl's flags and argument style.

kubectl runs ``kubectl-certmint`` from PATH with every argument after ``certmint``. This
module reads kubectl's ``--kubeconfig``, ``--context``, ``-n/--namespace`` and
``-A/--all-namespaces`` wherever they appear, takes the namespace from the kubeconfig
context when ``-n`` is absent (as kubectl does), and hands a ``certmint`` command line to
`certmint.cli.main`. Objects are named kubectl-style: ``status api -n payments``,
``rotate-ca clusterissuer/workloads``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from kubernetes import client, config

from certmint.api import resources
from certmint.cli import main as cli
from certmint.k8s import kube

USAGE = """usage: kubectl certmint COMMAND [ARGS] [-n NS | -A] [--context C] [--kubeconfig F]

commands:
  status [NAME]                 a Certificate's state; without NAME (or with -A) every one
  renew NAME                    ask for one immediate re-issue
  inspect SECRET | -f FILE      decode a certmint Secret or a PEM file
  rotate-ca issuer/NAME | clusterissuer/NAME [--emergency]
  convert [FILE ...]            cert-manager YAML to certmint YAML (see certmint convert -h)
"""


def _globals(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.add_argument("-n", "--namespace")
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    return parser.parse_known_args(argv)


def _default_namespace(flags: argparse.Namespace) -> str:
    """kubectl's rule: the context's namespace, else ``default``."""
    if flags.namespace:
        return str(flags.namespace)
    try:
        contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=flags.kubeconfig
        )
    except config.ConfigException:
        return "default"
    chosen = next((c for c in contexts if c["name"] == flags.context), current)
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def _connection(flags: argparse.Namespace) -> list[str]:
    out = ["--kubeconfig", flags.kubeconfig] if flags.kubeconfig else []
    return out + (["--context", flags.context] if flags.context else [])


def translate(argv: Sequence[str], namespace: str) -> list[str] | None:
    """The ``certmint`` command line for one plugin command line.

    Args:
        argv: the plugin's arguments without the connection and namespace flags.
        namespace: the namespace that applies (``-n`` or the context's).

    Returns:
        The certmint arguments, or None for a listing (``status`` without a name).

    Raises:
        SystemExit: on a command line that names no known command (usage printed).
    """
    command, rest = (argv[0], list(argv[1:])) if argv else ("", [])
    named = bool(rest) and not rest[0].startswith("-")
    if command == "status" and not named:
        return None
    translated: list[str] | None = None
    if command in ("status", "renew") and named:
        translated = [command, f"{namespace}/{rest[0]}", *rest[1:]]
    elif command == "inspect" and (named or rest[:1] == ["-f"]):
        translated = ["inspect", "-s", f"{namespace}/{rest[0]}"] if named else ["inspect"]
        translated += rest[1:]
    elif command == "rotate-ca" and named:
        translated = _rotate_ca(rest, namespace)
    elif command == "convert":
        translated = ["convert", *rest]
    if translated is None:
        sys.stderr.write(USAGE)
        raise SystemExit(2)
    return translated


def _rotate_ca(rest: list[str], namespace: str) -> list[str] | None:
    kind, _, name = rest[0].partition("/")
    if kind.lower() == "clusterissuer" and name:
        return ["rotate-ca", name, *rest[1:]]
    if kind.lower() == "issuer" and name:
        return ["rotate-ca", f"{namespace}/{name}", *rest[1:]]
    return None


def list_certificates(flags: argparse.Namespace, namespace: str) -> int:
    """Prints one line per Certificate: namespace, name, Ready, reason, notAfter.

    Args:
        flags: the connection flags; ``all_namespaces`` lists every namespace.
        namespace: the namespace listed otherwise.

    Returns:
        0, or 1 when a Certificate is not Ready (scripts can gate on it).
    """
    api = client.CustomObjectsApi(kube.load_api_client(flags.kubeconfig, context=flags.context))
    group, plural = (resources.GROUP, resources.VERSION), resources.PLURALS["Certificate"]
    if flags.all_namespaces:
        listing = api.list_cluster_custom_object(*group, plural)
    else:
        listing = api.list_namespaced_custom_object(*group, namespace, plural)
    items: list[dict[str, Any]] = listing.get("items", [])  # type: ignore[attr-defined]
    rows = [("NAMESPACE", "NAME", "READY", "REASON", "NOT AFTER")]
    rows += [_row(item) for item in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0 if all(row[2] == "True" for row in rows[1:]) else 1


def _row(item: dict[str, Any]) -> tuple[str, str, str, str, str]:
    status = item.get("status") or {}
    conditions: list[dict[str, Any]] = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    meta = item["metadata"]
    return (
        meta["namespace"],
        meta["name"],
        str(ready.get("status", "Unknown")),
        str(ready.get("reason", "-")),
        str(status.get("notAfter") or "-"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kubectl-certmint``.

    Args:
        argv: the arguments after ``kubectl certmint`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    flags, rest = _globals(args)
    namespace = _default_namespace(flags)
    translated = translate(rest, namespace)
    if translated is None:
        try:
            return list_certificates(flags, namespace)
        except client.ApiException as err:
            print(f"kubectl certmint: HTTP {err.status}: {err.reason}", file=sys.stderr)
            return 1
    return cli.main([*_connection(flags), *translated])


if __name__ == "__main__":
    sys.exit(main())
