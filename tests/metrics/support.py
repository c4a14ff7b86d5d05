"""Reading metrics the way Prometheus does: parse the text exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conveyor.metrics import render


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels; None when absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def value(text: str, name: str, **labels: str) -> float:
    """Like `sample`, with an absent series read as 0 (a counter never incremented)."""
    found = sample(text, name, **labels)
    return 0.0 if found is None else found


def families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


def scrape(registry: CollectorRegistry) -> str:
    return render(registry).decode()
