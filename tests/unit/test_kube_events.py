"""Event aggregation in `kube.Kube.post_event`: one Event per identity, counted on repeats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from certmint.k8s import kube
from certmint.runtime import events, scheduler
from tests.unit.test_kube_rest import ScriptedApi, serving
from tests.unit.test_scheduler import FakeClock

INVOLVED = {
    "apiVersion": "certmint.io/v1alpha1",
    "kind": "Certificate",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
}


def posted(scripted: ScriptedApi) -> list[tuple[str, str, str, object]]:
    """(method, path, content type, reason or count) of every request, in order."""
    return [
        (
            sent["method"],
            sent["path"],
            sent["content_type"],
            sent["body"].get("reason", sent["body"].get("count")),
        )
        for sent in scripted.requests
    ]


async def test_repeats_posted_at_once_make_one_event_with_a_count() -> None:
    scripted = ScriptedApi()
    scripted.answer(201, {"metadata": {"name": "web.1"}})
    async with serving(scripted, concurrency=4) as api:
        await asyncio.gather(
            *(api.post_event(INVOLVED, "Warning", "Failed", "boom", f"t{i}") for i in range(3))
        )

    events = "/api/v1/namespaces/shop/events"
    patch = "application/strategic-merge-patch+json"
    assert posted(scripted) == [
        ("POST", events, "application/json", "Failed"),
        ("PATCH", f"{events}/web.1", patch, 2),
        ("PATCH", f"{events}/web.1", patch, 3),
    ]


async def test_an_event_the_api_server_dropped_is_posted_anew() -> None:
    scripted = ScriptedApi()
    scripted.answer(201, {"metadata": {"name": "web.1"}})
    scripted.answer(404, {"kind": "Status", "message": "not found"})
    scripted.answer(201, {"metadata": {"name": "web.2"}})
    async with serving(scripted) as api:
        for now in ("t0", "t1"):
            await api.post_event(INVOLVED, "Warning", "Failed", "boom", now)

    assert [(method, path) for method, path, *_ in posted(scripted)] == [
        ("POST", "/api/v1/namespaces/shop/events"),
        ("PATCH", "/api/v1/namespaces/shop/events/web.1"),
        ("POST", "/api/v1/namespaces/shop/events"),
    ]


async def test_different_events_are_posted_side_by_side() -> None:
    scripted = ScriptedApi()
    scripted.answer(201, {"metadata": {"name": "web.1"}})
    scripted.answer(201, {"metadata": {"name": "web.2"}})
    async with serving(scripted) as api:
        await asyncio.gather(
            api.post_event(INVOLVED, "Warning", "Failed", "boom", "t0"),
            api.post_event(INVOLVED, "Normal", "Issued", "ok", "t0"),
        )

    assert sorted(reason for *_, reason in posted(scripted)) == ["Failed", "Issued"]
    assert {sent["method"] for sent in scripted.requests} == {"POST"}
    assert scripted.requests[0]["body"]["involvedObject"] == {
        "apiVersion": "certmint.io/v1alpha1",
        "kind": "Certificate",
        "name": "web",
        "namespace": "shop",
        "uid": "u-1",
    }


def test_the_errors_are_the_same_classes_under_both_names() -> None:
    assert (kube.KubeError, kube.ConflictError, kube.NotFoundError) == (
        kube.rest.KubeError,
        kube.rest.ConflictError,
        kube.rest.NotFoundError,
    )


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("certmint_events_dropped_total", {"reason": reason}) or 0.0


async def test_normal_events_past_the_budget_are_dropped_and_counted_warnings_never() -> None:
    scripted = ScriptedApi()
    for number in range(1, 6):
        scripted.answer(201, {"metadata": {"name": f"web.{number}"}})
    clock = FakeClock()
    budget = scheduler.TokenBucket(rate=1.0, burst=2, clock=clock)
    before = dropped("Issued")
    async with serving(scripted) as api:
        sink = events.EventSink(api, lambda: datetime(2040, 1, 1, tzinfo=UTC), budget)
        for number in range(4):
            sink.post(INVOLVED, "Normal", "Issued", f"serial {number}")
        sink.post(INVOLVED, "Warning", "Failed", "boom")
        clock.advance(1.0)
        sink.post(INVOLVED, "Normal", "Issued", "serial 4")
        await sink.settled()

    posted_reasons = sorted(
        (sent["body"]["type"], sent["body"]["message"]) for sent in scripted.requests
    )
    assert posted_reasons == [
        ("Normal", "serial 0"),
        ("Normal", "serial 1"),
        ("Normal", "serial 4"),
        ("Warning", "boom"),
    ]
    assert dropped("Issued") - before == 2
