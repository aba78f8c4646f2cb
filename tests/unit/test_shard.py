"""A label-selector shard: its selector, its Lease name, and how it follows its namespaces."""

from __future__ import annotations

import asyncio

import pytest

from certmint.runtime import shard


@pytest.mark.parametrize(
    ("text", "query", "lease"),
    [
        pytest.param("shard=a", "shard=a", "certmint-leader-a", id="one label names the Lease"),
        pytest.param(
            "team=Payments, shard=eu-1",
            "shard=eu-1,team=Payments",
            "certmint-leader-eu-1-payments",
            id="terms are sorted, so that one shard has one Lease name however it is written",
        ),
        pytest.param(
            "example.com/shard=a.b",
            "example.com/shard=a.b",
            "certmint-leader-a-b",
            id="a prefixed key; a dot in the value becomes a dash in the Lease name",
        ),
        pytest.param("shard=", "shard=", "certmint-leader", id="an empty value keeps the default"),
    ],
)
def test_a_selector_is_a_query_and_a_lease_name(text: str, query: str, lease: str) -> None:
    selector = shard.Selector.parse(text)
    assert (selector.query, selector.lease_name) == (query, lease)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("shard", id="a key without a value is refused"),
        pytest.param("shard!=a", id="a set-based term is refused"),
        pytest.param("shard in (a,b)", id="an in-term is refused"),
    ],
)
def test_only_equality_selectors(text: str) -> None:
    with pytest.raises(ValueError, match="not a key=value label selector term"):
        shard.Selector.parse(text)


def test_membership_follows_added_and_deleted_namespaces() -> None:
    async def scenario() -> list[tuple[set[str], bool]]:
        membership = shard.Membership()
        steps = []
        for event, name in [
            ("ADDED", "a"),
            ("MODIFIED", "a"),  # a label that does not matter changed
            ("ADDED", "b"),
            ("DELETED", "a"),  # deleted, or relabelled out of the shard
        ]:
            membership.changed.clear()
            membership.handle(event, {"metadata": {"name": name}})
            steps.append((set(membership.names), membership.changed.is_set()))
        return steps

    assert asyncio.run(scenario()) == [
        ({"a"}, True),
        ({"a"}, False),
        ({"a", "b"}, True),
        ({"b"}, True),
    ]


def test_the_runtime_restarts_with_the_new_set_and_its_end_ends_the_shard() -> None:
    async def scenario() -> tuple[int, list[tuple[str, ...]]]:
        membership = shard.Membership()
        listed = asyncio.Event()
        started: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()
        ended = asyncio.Event()

        async def serve(namespaces: tuple[str, ...]) -> int:
            await started.put(namespaces)
            await ended.wait()  # the runtime runs until the test "signals" it
            return 0

        follower = asyncio.create_task(shard.follow(membership, listed, serve))
        membership.handle("ADDED", {"metadata": {"name": "b"}})
        membership.handle("ADDED", {"metadata": {"name": "a"}})
        listed.set()
        served = [await asyncio.wait_for(started.get(), 1)]
        membership.handle("ADDED", {"metadata": {"name": "c"}})
        served.append(await asyncio.wait_for(started.get(), 1))
        membership.handle("DELETED", {"metadata": {"name": "a"}})
        served.append(await asyncio.wait_for(started.get(), 1))
        ended.set()
        return await asyncio.wait_for(follower, 1), served

    code, served = asyncio.run(scenario())
    assert (code, served) == (0, [("a", "b"), ("a", "b", "c"), ("b", "c")])
