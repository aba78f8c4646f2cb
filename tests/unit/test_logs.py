"""Log lines: ``--log-format json|text``, the object and reason on every line about one."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from certmint.runtime import logs

CREATED = datetime(2030, 5, 17, 9, 30, 1, 250000, tzinfo=UTC).timestamp()
CERTIFICATE = {
    "namespace": "payments",
    "certificate": "api",
    "issuer": "ClusterIssuer/workloads",
    "reason": "RenewalDue",
}


def record(
    message: str,
    *args: object,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    """A record as ``logging.getLogger("certmint.controller").log(...)`` makes it."""
    made = logging.getLogger("certmint.controller").makeRecord(
        "certmint.controller", level, __file__, 1, message, args, exc_info, extra=extra
    )
    made.created, made.msecs = CREATED, 250.0
    return made


JSON_CASES = [
    pytest.param(
        record("issued serial %s (revision %d)", "0a1b", 2, extra=CERTIFICATE),
        {
            "time": "2030-05-17T09:30:01.250+00:00",
            "level": "info",
            "logger": "certmint.controller",
            "message": "issued serial 0a1b (revision 2)",
            **CERTIFICATE,
        },
        id="a line about a certificate names its namespace, certificate, issuer and reason",
    ),
    pytest.param(
        record(
            "Issuer payments/ca: no Secret",
            level=logging.WARNING,
            extra={"issuer": "Issuer/ca", "reason": "CASecretMissing"},
        ),
        {
            "time": "2030-05-17T09:30:01.250+00:00",
            "level": "warning",
            "logger": "certmint.controller",
            "message": "Issuer payments/ca: no Secret",
            "issuer": "Issuer/ca",
            "reason": "CASecretMissing",
        },
        id="a line about an issuer names the issuer and reason",
    ),
    pytest.param(
        record("became the leader", extra={"namespace": "", "certificate": None}),
        {
            "time": "2030-05-17T09:30:01.250+00:00",
            "level": "info",
            "logger": "certmint.controller",
            "message": "became the leader",
        },
        id="a line about no object carries no empty object fields",
    ),
]


@pytest.mark.parametrize(("line", "expected"), JSON_CASES)
def test_json_lines_carry_the_object_and_reason(
    line: logging.LogRecord, expected: dict[str, Any]
) -> None:
    assert json.loads(logs.JsonFormatter().format(line)) == expected


def test_a_json_line_stays_one_line_whatever_the_message_holds() -> None:
    text = logs.JsonFormatter().format(record('a "quoted"\nmulti-line message\tü'))
    assert (text.count("\n"), json.loads(text)["message"]) == (
        0,
        'a "quoted"\nmulti-line message\tü',
    )


def test_a_json_line_carries_the_exception_on_the_same_line() -> None:
    try:
        raise ValueError("the CA Secret has no tls.key")  # noqa: TRY301 -- a real traceback
    except ValueError:
        text = logs.JsonFormatter().format(
            record("reconciling failed", level=logging.ERROR, exc_info=sys.exc_info())
        )
    entry = json.loads(text)
    assert (text.count("\n"), entry["message"], entry["error"].splitlines()[-1]) == (
        0,
        "reconciling failed",
        "ValueError: the CA Secret has no tls.key",
    )


TEXT_CASES = [
    pytest.param(
        record("issued serial %s", "0a1b", extra=CERTIFICATE),
        "2030-05-17 09:30:01,250 INFO    certmint.controller: issued serial 0a1b "
        "[namespace=payments certificate=api issuer=ClusterIssuer/workloads reason=RenewalDue]",
        id="a text line ends with the object and reason",
    ),
    pytest.param(
        record("became the leader", level=logging.WARNING),
        "2030-05-17 09:30:01,250 WARNING certmint.controller: became the leader",
        id="a text line about no object ends with the message",
    ),
]


@pytest.mark.parametrize(("line", "expected"), TEXT_CASES)
def test_text_lines_append_the_object_and_reason(line: logging.LogRecord, expected: str) -> None:
    formatter = logs.TextFormatter()
    formatter.converter = time.gmtime
    assert formatter.format(line) == expected


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restores the root logger and the levels `logs.configure` sets."""
    root = logging.getLogger()
    names = ("kopf", "kubernetes", "urllib3", "aiohttp.access")
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(
    ("verbose", "expected"),
    [
        pytest.param(False, ("INFO", "WARNING"), id="by default info, and only warnings from kopf"),
        pytest.param(True, ("DEBUG", "INFO"), id="verbose means debug, and kopf info"),
    ],
)
def test_configure_sets_the_levels(verbose: bool, expected: tuple[str, str]) -> None:
    logs.configure("json", verbose)
    assert (
        logging.getLevelName(logging.getLogger().level),
        logging.getLevelName(logging.getLogger("kopf").level),
    ) == expected


CONTEXT = "[namespace=payments certificate=api issuer=ClusterIssuer/workloads reason=RenewalDue]"


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(
    ("log_format", "parse", "expected"),
    [
        pytest.param(
            "json",
            lambda line: (json.loads(line)["message"], json.loads(line)["reason"]),
            ("issuance failed", "RenewalDue"),
            id="json mode writes a JSON object per record",
        ),
        pytest.param(
            "text",
            lambda line: (line.split(": ", 1)[1],),
            (f"issuance failed {CONTEXT}",),
            id="text mode writes a readable line per record",
        ),
    ],
)
def test_configure_writes_one_line_per_record_to_stderr_and_drops_kopf_chatter(
    capsys: pytest.CaptureFixture[str],
    log_format: str,
    parse: Callable[[str], tuple[str, ...]],
    expected: tuple[str, ...],
) -> None:
    logs.configure(log_format, verbose=False)
    logging.getLogger("certmint.controller").warning("issuance failed", extra=CERTIFICATE)
    logging.getLogger("kopf.objects").info("kopf chatter is dropped")

    assert [parse(line) for line in capsys.readouterr().err.splitlines()] == [expected]
