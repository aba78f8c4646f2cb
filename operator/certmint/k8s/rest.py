"""One request to the API server over certmint's aiohttp session, and its error mapping.

Every call `certmint.k8s.kube` makes goes through `Rest.request`: on the event loop, on
the session the informers already hold (`certmint.k8s.informer.Connection`), with no
thread and no model (de)serialization. Failures are mapped to three exceptions the
reconcilers understand: an API error keeps its HTTP status (409 is a `ConflictError`,
404 a `NotFoundError`), and a request that got no answer at all (connection refused or
reset, a timeout, a broken TLS session, a body cut short) is a `KubeError` with status 0.
Each request is bounded by `REQUEST_TIMEOUT`, so an API server that hangs never holds a
worker; nothing is retried here, the caller's backoff decides.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from certmint.k8s import informer

Json = dict[str, Any]

#: Connecting (TCP and TLS) within 10 s, then each read within 70 s. The API server answers
#: a request within 60 s or fails it (its default --request-timeout); the client gives it
#: a little longer.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=70.0)
#: What a request that got no HTTP answer raises.
TRANSPORT_FAILURES: tuple[type[Exception], ...] = (aiohttp.ClientError, TimeoutError, OSError)
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class KubeError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 when none was received)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class ConflictError(KubeError):
    """409: the object exists already, or changed since it was read."""


class NotFoundError(KubeError):
    """404: the object (or its namespace) does not exist."""


def is_transient(err: KubeError) -> bool:
    """Whether a failure says nothing about the request itself: retry it soon, unchanged.

    No answer (status 0), 408, 429 (API priority and fairness) and every 5xx. Anything
    else (403, 404, 409, 422 ...) is an answer about the request.
    """
    return err.status in (0, 408, 429) or err.status >= 500


def api_error(status: int, reason: str, body: bytes) -> KubeError:
    """The exception for an HTTP error answer: the Status object's message, else the reason.

    Args:
        status: The HTTP status (not 2xx).
        reason: The HTTP reason phrase, the message when the body has none.
        body: The answer's body, usually a ``metav1.Status`` in JSON.

    Returns:
        `ConflictError` for 409, `NotFoundError` for 404, else a `KubeError`.
    """
    try:
        message = str(json.loads(body).get("message", reason))
    except (AttributeError, ValueError):  # not JSON, or JSON but not an object
        message = reason
    if status == 409:
        return ConflictError(409, message)
    if status == 404:
        return NotFoundError(404, message)
    return KubeError(status, message)


class Rest:
    """JSON requests to the API server, at most ``concurrency`` in flight at once."""

    def __init__(self, connection: informer.Connection, concurrency: int) -> None:
        self._connection = connection
        self._slots = asyncio.Semaphore(concurrency)

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = JSON,
    ) -> Json:
        """Sends one request and returns the decoded JSON answer ({} for an empty one).

        Raises:
            KubeError: Any answer but 2xx (`ConflictError`, `NotFoundError` by status), or
                none at all (status 0). Redirects are not followed: they are errors too.
        """
        headers = self._connection.headers()
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        async with self._slots:
            try:
                async with self._connection.session.request(
                    method,
                    self._connection.url(path),
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=REQUEST_TIMEOUT,
                    allow_redirects=False,
                ) as response:
                    payload = await response.read()
                    status, reason = response.status, response.reason or ""
            except TRANSPORT_FAILURES as err:
                raise KubeError(0, f"no answer from the API server: {err!r}") from None
        if not 200 <= status < 300:
            raise api_error(status, reason, payload)
        try:
            result: Json = json.loads(payload) if payload else {}
        except ValueError as err:  # a body cut short
            raise KubeError(0, f"unreadable answer from the API server: {err}") from None
        return result
