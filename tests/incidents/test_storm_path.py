"""What an alert storm relies on: a duplicate joins its incident without waiting on the incident's
lock, every duplicate is kept as an alert row while the timeline shows bursts, and the API key and
policy lookups are cached for seconds, never longer than a change allows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from accounts.models import APIKey
from accounts.services import create_api_key, revoke_api_key
from incidents.models import Alert, EscalationPolicy, EventKind, Incident, IncidentEvent
from incidents.services import lock_incident
from orchestrator.selectors import incident_detail
from tests import factories


def post_alert(client: APIClient, key: str = "disk-full", summary: str = "Disk full on db-1"):
    return client.post("/api/v1/alerts/generic", {"summary": summary, "dedup_key": key}, format="json")


@pytest.fixture
def sender(db) -> APIClient:
    factories.policy(factories.contact("Kim"))
    _, raw_key = create_api_key(name="monitoring", scopes=["alerts:write", "incidents:read", "incidents:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


# --- duplicates -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_duplicates_are_all_kept_and_the_timeline_shows_them_as_bursts(sender):
    # given an open incident
    first = post_alert(sender)
    incident_id = first.json()["incident_id"]

    # when five duplicates arrive, then someone acknowledges, then two more duplicates arrive
    for _ in range(5):
        assert post_alert(sender).json()["deduplicated"] is True
    assert sender.post(f"/api/v1/incidents/{incident_id}/acknowledge").status_code == 200
    for _ in range(2):
        assert post_alert(sender).json()["deduplicated"] is True

    # then every alert is stored, the duplicates wrote no timeline rows of their own...
    assert Alert.objects.filter(incident_id=incident_id).count() == 8
    assert not IncidentEvent.objects.filter(incident_id=incident_id, kind=EventKind.DEDUPLICATED).exists()
    # ...and the timeline reads as two bursts, either side of the acknowledgement
    timeline = sender.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    kinds = [entry["kind"] for entry in timeline]
    bursts = [entry for entry in timeline if entry["kind"] == "deduplicated"]
    assert [entry["message"].split(" duplicate")[0] for entry in bursts] == ["5", "2"]
    assert (
        kinds.index("deduplicated") < kinds.index("acknowledged") < len(kinds) - 1 - kinds[::-1].index("deduplicated")
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_a_duplicate_is_accepted_while_the_incident_is_locked_by_a_transition(sender):
    # given an open incident, and a transition (the engine, an acknowledgement) holding its lock
    incident_id = post_alert(sender).json()["incident_id"]
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with transaction.atomic():
            lock_incident(incident_id)
            locked.set()
            release.wait(timeout=30)
        connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        # when a duplicate arrives meanwhile (from another thread: its own database connection)
        def post_from_another_thread():
            try:
                return post_alert(sender)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(post_from_another_thread).result(timeout=10)
        # then it is accepted and stored at once, without waiting for the lock
        assert answer.status_code == 200 and answer.json()["deduplicated"] is True
        assert Alert.objects.filter(incident_id=incident_id, duplicate=True).count() == 1
    finally:
        release.set()
        holder.join(timeout=30)


@pytest.mark.django_db
def test_a_duplicate_of_a_resolved_incident_opens_a_new_one(sender):
    first = post_alert(sender).json()["incident_id"]
    assert sender.post(f"/api/v1/incidents/{first}/resolve").status_code == 200

    again = post_alert(sender)

    assert again.status_code == 201
    assert again.json()["incident_id"] != first
    assert Incident.objects.filter(dedup_key="disk-full").count() == 2


# --- cached lookups -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_revoked_here_is_refused_at_once(sender):
    api_key, raw_key = create_api_key(name="grafana", scopes=["alerts:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert post_alert(client, key="a").status_code == 201

    revoke_api_key(api_key)

    refused = post_alert(client, key="b")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]


@pytest.mark.django_db
def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(sender, settings):
    # given a key in use, cached for half a second
    settings.API_KEY_CACHE_SECONDS = 0.5
    api_key, raw_key = create_api_key(name="grafana", scopes=["alerts:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert post_alert(client, key="a").status_code == 201

    # when another process revokes it (a row update this process is not told about)
    APIKey.objects.filter(pk=api_key.pk).update(revoked_at=api_key.created_at)

    # then it is refused once the cached entry has expired
    time.sleep(0.6)
    assert post_alert(client, key="b").status_code == 401


@pytest.mark.django_db
def test_a_new_default_policy_takes_over_within_the_cache_time(sender, settings):
    # given alerts going to the default policy, cached for half a second
    settings.POLICY_CACHE_SECONDS = 0.5
    old_default = EscalationPolicy.objects.get(is_default=True)
    newer = factories.policy(factories.contact("Lee"), name="newer", is_default=False)
    assert Incident.objects.get(pk=post_alert(sender, key="a").json()["incident_id"]).policy == old_default

    # when another process makes another policy the default
    EscalationPolicy.objects.filter(pk=old_default.pk).update(is_default=False)
    EscalationPolicy.objects.filter(pk=newer.pk).update(is_default=True)
    time.sleep(0.6)

    # then the next alert goes to it
    assert Incident.objects.get(pk=post_alert(sender, key="b").json()["incident_id"]).policy == newer


@pytest.mark.django_db
def test_a_policy_change_made_here_applies_to_the_next_alert(sender, settings):
    settings.POLICY_CACHE_SECONDS = 60
    assert post_alert(sender, key="a").status_code == 201
    newer = factories.policy(factories.contact("Lee"), name="newer", is_default=True)

    incident = Incident.objects.get(pk=post_alert(sender, key="b").json()["incident_id"])

    assert incident.policy == newer
    assert incident_detail(incident.pk).policy.name == "newer"
