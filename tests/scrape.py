"""Reading /metrics in tests: one scrape as {(sample name, frozenset of labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "test-metrics-token"


def scrape(client, settings) -> dict[tuple[str, frozenset], float]:
    if settings.METRICS_TOKEN != METRICS_TOKEN:  # each assignment stacks an override: once is enough
        settings.METRICS_TOKEN = METRICS_TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """The sample's value, 0 when the series is not there yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
