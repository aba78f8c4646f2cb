"""The work queue, its timer and the token bucket that bounds scheduled re-issues.

The token bucket and the timer's rate-limit waits run on an injected clock: the timer's
``asyncio.sleep`` is replaced (in the scheduler module only) by one that advances that
clock. Due times in the past need no clock at all; the few tests about waiting for a
future time use the real clock with short offsets and a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import types
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.runtime import scheduler

DEADLINE = 5.0  # seconds; a test fails instead of hanging


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Token bucket -------------------------------------------------------------------------
#: A step is "take" (one token, recording the delay) or a number of seconds to wait.
Step = str | float


def run_bucket(rate: float, burst: int, steps: list[Step]) -> list[float]:
    clock = FakeClock()
    bucket = scheduler.TokenBucket(rate, burst, clock=clock)
    delays = []
    for step in steps:
        if step == "take":
            delays.append(bucket.delay_for_one())
        else:
            assert isinstance(step, float)
            clock.advance(step)
    return delays


@pytest.mark.parametrize(
    ("rate", "burst", "steps", "delays"),
    [
        pytest.param(
            2.0, 3, ["take"] * 3, [0.0, 0.0, 0.0], id="a full bucket hands out its burst at once"
        ),
        pytest.param(
            2.0,
            3,
            ["take"] * 4,
            [0.0, 0.0, 0.0, 0.5],
            id="the token after the burst waits one interval",
        ),
        pytest.param(
            2.0,
            1,
            ["take"] * 4,
            [0.0, 0.5, 1.0, 1.5],
            id="tokens taken together wait one interval apart",
        ),
        pytest.param(
            2.0,
            2,
            ["take", "take", 0.5, "take", "take"],
            [0.0, 0.0, 0.0, 0.5],
            id="tokens come back at the rate",
        ),
        pytest.param(
            10.0,
            2,
            [60.0, "take", "take", "take"],
            [0.0, 0.0, 0.1],
            id="an idle bucket saves no more than its burst",
        ),
        pytest.param(
            4.0,
            1,
            ["take", "take", 0.25, "take"],
            [0.0, 0.25, 0.25],
            id="a wait already promised is not handed out again",
        ),
    ],
)
def test_token_bucket(rate: float, burst: int, steps: list[Step], delays: list[float]) -> None:
    assert run_bucket(rate, burst, steps) == pytest.approx(delays)


@given(
    rate=st.floats(min_value=0.5, max_value=100.0),
    burst=st.integers(min_value=1, max_value=50),
    takes=st.integers(min_value=1, max_value=300),
)
def test_the_kth_token_taken_at_once_waits_for_the_tokens_beyond_the_burst(
    rate: float, burst: int, takes: int
) -> None:
    delays = run_bucket(rate, burst, ["take"] * takes)

    assert delays == pytest.approx([max(0.0, (k - burst) / rate) for k in range(1, takes + 1)])


@given(
    rate=st.floats(min_value=0.5, max_value=100.0),
    burst=st.integers(min_value=1, max_value=50),
    attempts=st.integers(min_value=1, max_value=300),
    wait=st.floats(min_value=0.0, max_value=10.0),
)
def test_take_hands_out_the_burst_then_only_what_the_rate_brought_back(
    rate: float, burst: int, attempts: int, wait: float
) -> None:
    clock = FakeClock()
    bucket = scheduler.TokenBucket(rate, burst, clock=clock)

    first = [bucket.take() for _ in range(attempts)]
    clock.advance(wait)
    second = sum(bucket.take() for _ in range(burst + 1))

    assert first == [k < burst for k in range(attempts)]
    saved = min(burst, max(0, burst - attempts) + wait * rate)
    # Whole tokens only; a wait that lands on a whole token may round either way.
    assert math.floor(saved - 1e-6) <= second <= math.floor(saved + 1e-6)


def test_a_refused_take_leaves_no_debt() -> None:
    clock = FakeClock()
    bucket = scheduler.TokenBucket(2.0, 1, clock=clock)

    assert bucket.take()
    assert not bucket.take()
    assert not bucket.take()
    clock.advance(0.5)

    assert bucket.take()
    assert bucket.delay_for_one() == pytest.approx(0.5)


# Work queue ---------------------------------------------------------------------------
SOON = datetime(2040, 1, 1, tzinfo=UTC)


async def next_key(queue: scheduler.WorkQueue[str]) -> str:
    return await asyncio.wait_for(queue.get(), DEADLINE)


async def test_a_key_added_twice_is_handed_out_once() -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=1, burst=1)

    queue.add("a")
    queue.add("a")
    queue.add("b")

    assert [await next_key(queue), await next_key(queue)] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_added_while_it_is_processed_runs_once_more_afterwards() -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=1, burst=1)
    queue.add("a")
    assert await next_key(queue) == "a"

    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # never handed to a second worker while the first works
    queue.done("a")

    assert len(queue) == 1
    assert await next_key(queue) == "a"
    queue.done("a")
    assert len(queue) == 0


@pytest.mark.parametrize(
    ("change", "due", "scheduled"),
    [
        pytest.param(
            lambda q: q.schedule("a", SOON), SOON, 1, id="a scheduled key knows its due time"
        ),
        pytest.param(
            lambda q: (q.schedule("a", SOON), q.schedule("a", SOON + timedelta(hours=1))),
            SOON + timedelta(hours=1),
            1,
            id="a later schedule replaces an earlier one",
        ),
        pytest.param(
            lambda q: (q.schedule("a", SOON), q.schedule("a", SOON - timedelta(hours=1))),
            SOON - timedelta(hours=1),
            1,
            id="an earlier schedule replaces a later one",
        ),
        pytest.param(
            lambda q: (q.schedule("a", SOON), q.add("a")),
            None,
            0,
            id="adding a key now clears its schedule",
        ),
        pytest.param(
            lambda q: (q.schedule("a", SOON), q.forget("a")),
            None,
            0,
            id="forgetting a key drops its schedule",
        ),
    ],
)
def test_schedule_bookkeeping(
    change: Callable[[scheduler.WorkQueue[str]], object], due: datetime | None, scheduled: int
) -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=1, burst=1)

    change(queue)

    assert (queue.due_at("a"), queue.scheduled) == (due, scheduled)


# The timer ----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def timer(queue: scheduler.WorkQueue[str]) -> AsyncIterator[None]:
    task = asyncio.create_task(queue.run_timer())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeClock, list[float]]:
    """A fake clock for the bucket; the timer's rate-limit sleeps advance it instead."""
    fake = FakeClock()
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.advance(seconds)
        await real_sleep(0)

    patched = types.ModuleType("asyncio")
    patched.__dict__.update(vars(asyncio))
    patched.sleep = sleep  # type: ignore[attr-defined]
    monkeypatch.setattr(scheduler, "asyncio", patched)
    return fake, slept


def rate_limited_queue(clock: FakeClock, rate: float, burst: int) -> scheduler.WorkQueue[str]:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=rate, burst=burst)
    queue.bucket = scheduler.TokenBucket(rate, burst, clock=clock)
    return queue


def past(seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_keys_that_fall_due_together_are_released_at_the_rate_in_due_order(
    clock: tuple[FakeClock, list[float]],
) -> None:
    fake, slept = clock
    queue = rate_limited_queue(fake, rate=2, burst=2)
    for index in range(5):
        queue.schedule(f"k{index}", past(60 - index))

    async with timer(queue):
        released = [await next_key(queue) for _ in range(5)]

    assert released == ["k0", "k1", "k2", "k3", "k4"]
    assert slept == pytest.approx([0.5, 0.5, 0.5])  # the burst of two goes at once
    assert queue.scheduled == 0


async def test_work_that_is_not_rate_limited_skips_the_bucket(
    clock: tuple[FakeClock, list[float]],
) -> None:
    fake, slept = clock
    queue = rate_limited_queue(fake, rate=2, burst=1)
    for index in range(5):
        queue.schedule(f"k{index}", past(60 - index), limited=False)

    async with timer(queue):
        released = {await next_key(queue) for _ in range(5)}

    assert released == {"k0", "k1", "k2", "k3", "k4"}
    assert slept == []


async def test_a_key_added_now_is_not_released_again_by_its_old_schedule(
    clock: tuple[FakeClock, list[float]],
) -> None:
    fake, _ = clock
    queue = rate_limited_queue(fake, rate=1, burst=1)
    queue.schedule("first", past(10))
    queue.schedule("second", past(9))
    queue.add("second")  # a change arrives: the schedule is dropped, the key runs now

    async with timer(queue):
        assert await next_key(queue) == "second"
        assert await next_key(queue) == "first"
        queue.schedule("marker", past(1))
        assert await next_key(queue) == "marker"

    assert len(queue) == 0


async def test_a_key_is_not_released_before_its_time() -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=100, burst=100)
    due = datetime.now(UTC) + timedelta(milliseconds=300)

    async with timer(queue):
        queue.schedule("a", due)
        key = await next_key(queue)
        released = time.time()

    assert key == "a"
    assert released >= due.timestamp()


async def test_a_rescheduled_key_is_released_only_at_its_new_time() -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=100, burst=100)
    now = datetime.now(UTC)
    early, late = now + timedelta(milliseconds=100), now + timedelta(milliseconds=400)

    async with timer(queue):
        queue.schedule("a", early)
        queue.schedule("a", late)
        queue.schedule("marker", late + timedelta(milliseconds=100))
        first = await next_key(queue)
        first_at = time.time()
        queue.done(first)
        second = await next_key(queue)

    assert (first, second) == ("a", "marker")
    assert first_at >= late.timestamp()
    assert len(queue) == 0


# Admission: whether a run of a key went through the bucket -------------------------------
async def test_a_key_released_through_the_bucket_is_admitted_for_one_run(
    clock: tuple[FakeClock, list[float]],
) -> None:
    fake, _ = clock
    queue = rate_limited_queue(fake, rate=2, burst=2)
    queue.schedule("a", past(1))

    async with timer(queue):
        key = await next_key(queue)

    assert (key, queue.take_admission("a"), queue.take_admission("a")) == ("a", True, False)


@pytest.mark.parametrize(
    "arrive",
    [
        pytest.param(lambda q: q.add("a"), id="a key added by a change is not admitted"),
        pytest.param(
            lambda q: q.schedule("a", past(1), limited=False),
            id="a key released without the rate limit is not admitted",
        ),
    ],
)
async def test_keys_that_skip_the_bucket_are_not_admitted(
    clock: tuple[FakeClock, list[float]],
    arrive: Callable[[scheduler.WorkQueue[str]], object],
) -> None:
    fake, slept = clock
    queue = rate_limited_queue(fake, rate=2, burst=2)
    arrive(queue)

    async with timer(queue):
        key = await next_key(queue)

    assert (key, queue.take_admission("a"), slept) == ("a", False, [])


def test_transient_failures_back_off_per_key_with_jitter_up_to_the_cap() -> None:
    queue: scheduler.WorkQueue[str] = scheduler.WorkQueue(rate=1.0, burst=1)
    delays = [queue.failure_delay("a") for _ in range(10)]
    other = queue.failure_delay("b")
    queue.succeeded("a")
    again = queue.failure_delay("a")
    ceilings = [min(0.5 * 2**n, 30.0) for n in range(10)]
    assert {
        "each within [ceiling/2, ceiling]": all(
            ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True)
        ),
        "another key starts from the base": 0.25 <= other <= 0.5,
        "a success starts over": (queue.failures("a"), 0.25 <= again <= 0.5),
    } == {
        "each within [ceiling/2, ceiling]": True,
        "another key starts from the base": True,
        "a success starts over": (1, True),
    }
