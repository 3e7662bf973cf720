"""The fast lane's cheap check of an Alertmanager body (incidents.fast_lane.plain_alertmanager) held
against the serializer it stands in for, AlertmanagerIn, body after body: whatever the check accepts,
the serializer accepts too, and both route it the same way (the same key, status and policy)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from incidents import ingestion
from incidents.fast_lane import plain_alertmanager
from incidents.models import Source
from incidents.serializers import AlertmanagerIn

# What Alertmanager sends (webhook version 4), as bench/alert_storm.py sends it.
ALERTMANAGER_BODY = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "oncall",
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull", "severity": "critical", "escalation_policy": "payments"},
    "commonAnnotations": {"summary": "디스크가 가득 찼습니다"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "db-1"},
            "annotations": {"summary": "db-1"},
            "startsAt": "2026-11-30T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "5707aaaabbbbcccc",
        }
    ],
}

# Values a sender might put anywhere: right, wrong, and odd but understandable.
ODD_VALUES = [
    None, True, False, 0, 4, 1.5, "", " ", "4", " 4 ", "4.0", "firing", "resolved", "FIRING", " firing",
    "x" * 10_001, " " + "x" * 10_000, "x" * 10_000, "text", [], ["firing"], {}, {"a": "b"}, {"a": 1},
    {"a": None}, {"a": {"b": "c"}}, [{}], [{"status": "firing"}],
]  # fmt: skip
DELETED = object()


def variants(body: dict) -> Iterator[dict]:
    """The body with one value replaced by each odd value, or removed: at the top, in the label
    maps, in the first alert and in its label maps."""
    places = [(), ("commonLabels",), ("groupLabels",), ("commonAnnotations",), ("alerts", 0)]
    places += [("alerts", 0, "labels"), ("alerts", 0, "annotations")]
    for place in places:
        container = body
        for step in place:
            container = container[step]
        for name in [*container.keys(), "version", "receiver", "fingerprint", "status"]:
            for value in [*ODD_VALUES, DELETED]:
                changed = copy.deepcopy(body)
                target = changed
                for step in place:
                    target = target[step]
                if value is DELETED:
                    target.pop(name, None)
                else:
                    target[name] = value
                yield changed
    for alerts in [None, [], "alerts", {}, [None], ["x"], [ALERTMANAGER_BODY["alerts"][0], 1]]:
        yield {**copy.deepcopy(body), "alerts": alerts}
    yield from [None, [], "body", 4, [body]]


def serializer_routing(body) -> ingestion.FiringAlert | bool | None:
    """How Django's path routes the body: False when AlertmanagerIn refuses it."""
    serializer = AlertmanagerIn(data=body)
    if not serializer.is_valid():
        return False
    return ingestion.firing_alert(Source.ALERTMANAGER, serializer.validated_data, policy=None)


def test_alertmanagers_own_body_is_plain_and_routed_as_the_serializer_routes_it():
    plain = plain_alertmanager(copy.deepcopy(ALERTMANAGER_BODY))

    assert plain is not None
    assert ingestion.firing_alert(Source.ALERTMANAGER, plain, policy=None) == serializer_routing(ALERTMANAGER_BODY)
    assert ingestion.firing_alert(Source.ALERTMANAGER, plain, policy=None).policy_reference == "payments"


@pytest.mark.parametrize("group_key", ["  padded  ", "x" * 10_000])
def test_a_group_key_is_stripped_and_bounded_as_the_serializer_does(group_key):
    body = {**copy.deepcopy(ALERTMANAGER_BODY), "groupKey": group_key}

    plain = plain_alertmanager(body)

    assert ingestion.firing_alert(Source.ALERTMANAGER, plain, policy=None) == serializer_routing(body)


def test_whatever_the_plain_check_accepts_the_serializer_accepts_and_routes_alike():
    accepted = refused_by_both = left_to_the_serializer = 0
    for body in variants(ALERTMANAGER_BODY):
        plain = plain_alertmanager(copy.deepcopy(body))
        routing = serializer_routing(copy.deepcopy(body))
        if plain is not None:
            assert routing is not False, f"the serializer refuses a body the lane would store: {body!r}"
            assert ingestion.firing_alert(Source.ALERTMANAGER, plain, policy=None) == routing, body
            accepted += 1
        elif routing is False:
            refused_by_both += 1
        else:
            left_to_the_serializer += 1  # odd but valid: the lane runs the serializer for these

    # every kind of outcome was seen, so the comparison above compared something
    assert accepted > 50 and refused_by_both > 50 and left_to_the_serializer > 50
