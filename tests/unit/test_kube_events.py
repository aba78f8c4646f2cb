"""Event aggregation in `kube.Kube.post_event`: one Event per identity, counted on repeats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client

from certmint.k8s import kube

INVOLVED = {
    "apiVersion": "certmint.io/v1alpha1",
    "kind": "Certificate",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
}


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _EventsApi:
    """Records Event creates and patches as the API server would answer them."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, int]] = []

    def create_namespaced_event(
        self,
        namespace: str,
        body: dict[str, Any],
        _preload_content: bool,
        _request_timeout: object = None,
    ) -> _Response:
        self.created.append(body)
        return _Response({"metadata": {"name": f"web.{len(self.created)}"}})

    def patch_namespaced_event(
        self,
        name: str,
        namespace: str,
        body: dict[str, Any],
        _preload_content: bool,
        _request_timeout: object = None,
    ) -> _Response:
        self.patched.append((name, body["count"]))
        return _Response({})


def _api() -> tuple[kube.Kube, _EventsApi]:
    api = kube.Kube(client.ApiClient(), threads=4)
    events = _EventsApi()
    api._core = events  # type: ignore[assignment]  # the Event calls only
    return api, events


async def test_repeats_posted_at_once_make_one_event_with_a_count() -> None:
    api, events = _api()

    await asyncio.gather(
        *(api.post_event(INVOLVED, "Warning", "Failed", "boom", f"t{i}") for i in range(3))
    )

    assert (len(events.created), events.patched) == (1, [("web.1", 2), ("web.1", 3)])
    api.close()


async def test_different_events_are_posted_side_by_side() -> None:
    api, events = _api()

    await asyncio.gather(
        api.post_event(INVOLVED, "Warning", "Failed", "boom", "t0"),
        api.post_event(INVOLVED, "Normal", "Issued", "ok", "t0"),
    )

    assert (sorted(body["reason"] for body in events.created), events.patched) == (
        ["Failed", "Issued"],
        [],
    )
    api.close()
