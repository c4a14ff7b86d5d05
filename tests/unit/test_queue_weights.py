"""The smooth weighted round-robin that orders a weighted worker's queues per fetch."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.queue_weights import WeightedOrder, split_weight, weights_of


def firsts(order: WeightedOrder, n: int) -> list[str]:
    return [order.next()[0] for _ in range(n)]


def test_without_weights_the_order_is_strict() -> None:
    order = WeightedOrder(["high", "default", "low"])
    assert not order.weighted
    assert all(order.next() == ["high", "default", "low"] for _ in range(10))


def test_each_queue_comes_first_in_proportion_to_its_weight_spread_out() -> None:
    order = WeightedOrder(["high", "default", "low"], [5, 2, 1])
    picks = firsts(order, 8)
    assert Counter(picks) == {"high": 5, "default": 2, "low": 1}
    # Smooth: the heavy queue never comes first more than twice in a row here.
    assert "high,high,high" not in ",".join(picks)
    assert firsts(order, 800).count("low") == 100


def test_every_order_names_each_queue_once() -> None:
    order = WeightedOrder(["a", "b", "c"], [3, 1, 1])
    for _ in range(20):
        assert sorted(order.next()) == ["a", "b", "c"]


@given(st.lists(st.integers(1, 20), min_size=1, max_size=6))
def test_shares_are_exact_over_one_cycle(weights: list[int]) -> None:
    names = [f"q{i}" for i in range(len(weights))]
    order = WeightedOrder(names, weights)
    counts = Counter(firsts(order, sum(weights)))
    if len(names) > 1:
        assert counts == {n: w for n, w in zip(names, weights, strict=True)}


def test_split_and_weights_of() -> None:
    assert split_weight("high:5") == ("high", 5)
    assert split_weight("low") == ("low", None)
    assert weights_of(["high:5", "low"]) == (5, 1)
    assert weights_of(["high", "low"]) == ()
    for bad in ("high:0", "high:x", "high:", "high:1001", "high:-1"):
        with pytest.raises(ValueError, match="weight of 'high'"):
            split_weight(bad)


def test_a_weight_per_queue_or_none() -> None:
    with pytest.raises(ValueError, match="one weight per queue"):
        WeightedOrder(["a", "b"], [1])
