"""The seed's configuration (PRIMARY_CONTACT, SECONDARY_CONTACT) makes the default policy on the first
alert: with the same number twice, and with two first alerts at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from incidents.models import Contact, EscalationPolicy, Incident
from incidents.services import SEED_POLICY_NAME, ensure_seed_policy

SAME_NUMBER = "+821055556666"


@pytest.mark.django_db
def test_the_same_number_as_primary_and_secondary_calls_that_person_repeatedly(system_client, settings):
    # given: the seed's .env, which names one person twice
    settings.PRIMARY_CONTACT = settings.SECONDARY_CONTACT = SAME_NUMBER

    # when: the first alert arrives on the seed's endpoint
    response = system_client.post("/webhook/start", {"incident_summary": "서버 A 다운"}, format="json")

    # then: it is answered, the first call goes to that person, and the policy has them once
    assert response.status_code == 200, response.content
    assert (response.json()["to"], response.json()["role"]) == (SAME_NUMBER, "primary")
    policy = Incident.objects.get(pk=response.json()["incident_id"]).policy
    assert [member.contact.phone for member in policy.members.all()] == [SAME_NUMBER]
    assert Contact.objects.filter(phone=SAME_NUMBER).count() == 1


def _wait_until_blocked(count: int) -> None:
    """Waits until `count` other sessions of this test database wait for a lock."""
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is a snapshot
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        threading.Event().wait(0.02)


@pytest.mark.django_db(transaction=True)
def test_two_first_alerts_at_once_make_one_seed_policy_and_no_error(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row and table locks to hold both first alerts at the same point")
    # given: no policy yet, and both numbers configured
    settings.PRIMARY_CONTACT, settings.SECONDARY_CONTACT = "+821011112222", "+821033334444"
    results, errors = [], []

    def first_alert():
        try:
            results.append(ensure_seed_policy())
        except Exception as exc:  # the failure this test is about
            errors.append(repr(exc))
        finally:
            connections.close_all()

    # when: two first alerts both find no policy, then both try to write it (the table lock holds
    # every write until both have read)
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("LOCK TABLE incidents_escalationpolicy IN SHARE ROW EXCLUSIVE MODE")
        threads = [threading.Thread(target=first_alert) for _ in range(2)]
        for thread in threads:
            thread.start()
        _wait_until_blocked(2)
        cursor.execute("COMMIT")
    for thread in threads:
        thread.join(timeout=30)

    # then: both got the same policy, there is one, and nothing failed
    assert errors == []
    assert len(results) == 2 and results[0].pk == results[1].pk
    assert EscalationPolicy.objects.filter(name=SEED_POLICY_NAME).count() == 1
    assert EscalationPolicy.objects.get(is_default=True).name == SEED_POLICY_NAME
