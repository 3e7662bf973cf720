"""Policies and contacts in the Django admin: people in order from 1, duplicates refused with a clear
error, the call order spelled out, a contact's policies on its page, and drills that are rate-limited."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from incidents.models import EscalationPolicy, Incident, PolicyContact
from tests import factories
from tests.accounts.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(settings) -> Client:
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    return client


def _policy_form(name: str, rows: list[tuple[int, int]], **extra) -> dict:
    """The add form of a policy, with (order, contact id) rows in its people inline."""
    form = {
        "name": name,
        "max_attempts": "5",
        "ring_timeout_seconds": "30",
        "pause_seconds": "0",
        "message_repeats": "3",
        "members-TOTAL_FORMS": str(len(rows)),
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }
    for index, (order, contact_id) in enumerate(rows):
        form[f"members-{index}-order"] = str(order)
        form[f"members-{index}-contact"] = str(contact_id)
    form.update(extra)
    return form


def test_people_are_numbered_from_one_and_the_call_order_is_spelled_out(admin_client):
    # given Kim and Lee, typed as 1 and 2
    kim, lee = factories.contact("Kim"), factories.contact("Lee")

    response = admin_client.post(
        "/admin/incidents/escalationpolicy/add/", _policy_form("night", [(1, kim.pk), (2, lee.pk)])
    )

    # then Kim is called first (stored from 0), and the policy page spells the order out
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = EscalationPolicy.objects.get(name="night")
    assert list(policy.members.values_list("contact__name", "position")) == [("Kim", 0), ("Lee", 1)]
    page = admin_client.get(f"/admin/incidents/escalationpolicy/{policy.pk}/change/").content.decode()
    assert "1st call: Kim, 2nd: Lee, 3rd: Kim, 4th: Lee, 5th: Kim" in page
    assert 'name="members-0-order" value="1"' in page


def test_the_same_person_twice_is_refused_with_a_clear_error(admin_client):
    kim = factories.contact("Kim")

    response = admin_client.post(
        "/admin/incidents/escalationpolicy/add/", _policy_form("twice", [(1, kim.pk), (2, kim.pk)])
    )

    assert response.status_code == 200
    assert "Kim is listed twice: a policy lists each person once" in response.content.decode()
    assert not EscalationPolicy.objects.filter(name="twice").exists()


def test_gaps_in_the_order_are_closed_on_save(admin_client):
    kim, lee = factories.contact("Kim"), factories.contact("Lee")

    admin_client.post("/admin/incidents/escalationpolicy/add/", _policy_form("gaps", [(5, lee.pk), (3, kim.pk)]))

    policy = EscalationPolicy.objects.get(name="gaps")
    assert list(PolicyContact.objects.filter(policy=policy).values_list("contact__name", "position")) == [
        ("Kim", 0),
        ("Lee", 1),
    ]


def test_a_contacts_page_shows_the_policies_it_is_in(admin_client):
    kim = factories.contact("Kim")
    factories.policy(factories.contact("Lee"), kim, name="payments")

    page = admin_client.get(f"/admin/incidents/contact/{kim.pk}/change/").content.decode()

    assert ">payments</a> (2nd in order)" in page


def test_drill_this_policy_starts_a_drill_and_refuses_the_fourth_in_ten_minutes(admin_client):
    policy = factories.policy(factories.contact("Kim"), name="payments")
    action = {"action": "drill_selected", "_selected_action": [policy.pk]}

    said = []
    for _ in range(4):
        response = admin_client.post("/admin/incidents/escalationpolicy/", action, follow=True)
        said.append([str(message) for message in response.context["messages"]])

    drills = Incident.objects.filter(policy=policy, is_drill=True).order_by("pk")
    assert drills.count() == 3
    link = f'<a href="/admin/incidents/incident/{drills[0].pk}/change/">#{drills[0].pk}</a>'
    assert said[0] == [f"payments: drill {link} started, marked DRILL"]
    assert said[3] == ["payments: not started, 3 drills in 10 minutes is the limit (they ring real phones)"]


def test_a_test_call_rings_only_that_contact_once_on_a_policy_marked_test_call(admin_client):
    kim = factories.contact("Kim")
    factories.policy(kim, factories.contact("Lee"), name="payments")

    response = admin_client.post(
        "/admin/incidents/contact/", {"action": "test_call_selected", "_selected_action": [kim.pk]}, follow=True
    )

    drill = Incident.objects.get(is_drill=True)
    assert drill.policy.name == f"test call: Kim (#{kim.pk})"
    assert not drill.policy.is_default and drill.policy.max_attempts == 1
    assert list(drill.policy.members.values_list("contact__name", flat=True)) == ["Kim"]
    assert drill.attempts.get().contact == kim
    assert "Kim: drill" in str(next(iter(response.context["messages"])))
