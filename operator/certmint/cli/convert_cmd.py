"""``certmint convert``: cert-manager YAML in (files or stdin), certmint YAML out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from certmint.cli import convert


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the ``convert`` subcommand to the ``certmint`` parser.

    Args:
        commands: the object ``ArgumentParser.add_subparsers`` returned.
    """
    sub = commands.add_parser(
        "convert", help="convert cert-manager Certificates and Issuers into certmint's"
    )
    sub.add_argument("files", nargs="*", help="YAML files; none or - reads stdin")
    sub.add_argument(
        "--trust-domain", default=convert.DEFAULT_TRUST_DOMAIN, help="of the converted issuers"
    )
    sub.add_argument(
        "--allow-lossy", action="store_true", help="exit 0 even when fields have no equivalent"
    )
    sub.add_argument(
        "--no-adopt",
        action="store_true",
        help="do not take over the Secrets cert-manager wrote (spec.secretAdoption)",
    )
    sub.add_argument("-o", "--output", help="write here instead of stdout")


def _read(files: list[str]) -> list[Any]:
    texts = [sys.stdin.read() if name == "-" else Path(name).read_text() for name in files or ["-"]]
    return [doc for text in texts for doc in yaml.safe_load_all(text)]


def command(args: argparse.Namespace) -> int:
    """Runs ``certmint convert``.

    Args:
        args: the parsed command line.

    Returns:
        0 when everything converted (or ``--allow-lossy``), 2 when fields were lost, 1 when
        the input could not be read.
    """
    try:
        documents = _read(args.files)
    except (OSError, yaml.YAMLError) as err:
        print(f"certmint convert: {err}", file=sys.stderr)
        return 1
    result = convert.convert(documents, trust_domain=args.trust_domain, adopt=not args.no_adopt)
    text = yaml.safe_dump_all(result.objects, sort_keys=False) if result.objects else ""
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    for loss in result.losses:
        print(f"not converted: {loss}", file=sys.stderr)
    if result.losses and not args.allow_lossy:
        print(
            f"certmint convert: {len(result.losses)} field(s) have no certmint equivalent; "
            "review them, then re-run with --allow-lossy to accept the loss",
            file=sys.stderr,
        )
        return 2
    return 0
