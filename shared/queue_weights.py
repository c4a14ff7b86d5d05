"""Weighted queues: `name:weight` items of a worker's queue list, and the order in which
one fetch reads the queues (a smooth weighted round-robin).

read_claim.lua reads the queues it is given in order, the first taking as many entries as
it has (up to the fetch's count). With weights, each fetch puts first the queue that the
smooth weighted round-robin picks (nginx's: every queue gains its weight, the largest
current value is picked and loses the total), so over any run of fetches each queue comes
first in proportion to its weight, spread out rather than in bursts: a busy heavy queue
cannot starve a light one. The other queues follow by their current values, so a queue
passed over for long is read next when the first has fewer entries than the fetch wants.
Without weights the order is the configured one, always (strict priority).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MAX_WEIGHT = 1000


def split_weight(item: str) -> tuple[str, int | None]:
    """``"high:5"`` -> ``("high", 5)``; ``"high"`` -> ``("high", None)``. `ValueError` for
    a weight that is not an integer 1..MAX_WEIGHT."""
    name, sep, weight = item.partition(":")
    if not sep:
        return item, None
    if not weight.isdecimal() or not 1 <= int(weight) <= MAX_WEIGHT:
        raise ValueError(f"the weight of {name!r} must be an integer between 1 and {MAX_WEIGHT}")
    return name, int(weight)


def weights_of(items: Iterable[str]) -> tuple[int, ...]:
    """The weights of `items` (`split_weight`), one per item, 1 for an item without one; ()
    when no item has a weight (strict priority order)."""
    given = [split_weight(item)[1] for item in items]
    if all(w is None for w in given):
        return ()
    return tuple(1 if w is None else w for w in given)


class WeightedOrder:
    """The queue order of each fetch: `next()`. Pure: no clock, no randomness."""

    def __init__(self, queues: Sequence[str], weights: Sequence[int] = ()) -> None:
        if weights and len(weights) != len(queues):
            raise ValueError("one weight per queue, or none")
        self.queues = list(queues)
        self.weights = list(weights)
        self.total = sum(weights)
        self.current = [0] * len(queues)

    @property
    def weighted(self) -> bool:
        return bool(self.weights)

    def next(self) -> list[str]:
        """The queues in the order the next fetch reads them."""
        if not self.weights or len(self.queues) < 2:
            return self.queues
        for i, weight in enumerate(self.weights):
            self.current[i] += weight
        # Highest current value first; ties keep the configured order.
        ranked = sorted(range(len(self.queues)), key=lambda i: (-self.current[i], i))
        self.current[ranked[0]] -= self.total
        return [self.queues[i] for i in ranked]
