"""The API-ceiling writer's split of names into probe slices and the measured rest."""

from __future__ import annotations

from bench import ceiling


def test_each_candidate_probes_its_own_slice_and_the_rest_is_measured() -> None:
    names = [f"c{i:05d}" for i in range(1000)]
    probes, rest = ceiling.plan_slices(names, (8, 16, 32, 64))
    assert [concurrency for concurrency, _ in probes] == [8, 16, 32, 64]
    probed = [name for _, slice_ in probes for name in slice_]
    assert len(set(probed)) == len(probed)
    assert sorted(probed + list(rest)) == names
    assert len(rest) > len(names) // 2


def test_too_few_names_are_measured_once_without_probes() -> None:
    names = [f"c{i}" for i in range(300)]
    probes, rest = ceiling.plan_slices(names, (8, 16, 32, 64))
    assert probes == []
    assert list(rest) == names
