"""Nobody locks the organisation out of administration: no one lowers their own role or disables
themselves, the last active administrator stays one, and API keys get a sane expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import APIKey, Role, User
from accounts.services import update_user
from config.errors import DomainError
from tests.accounts.helpers import person, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_mfa(settings):
    settings.MFA_REQUIRED_ROLES = []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPER_ADMIN])
def test_an_administrator_cannot_lower_their_own_role_through_the_api(role):
    me = person("boss", role)
    person("other-admin", Role.ADMIN)  # not the last one: the refusal is about demoting oneself

    answer = signed_in("boss").patch(f"/api/v1/users/{me.pk}", {"role": "AGENT"}, format="json")

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "self_demotion"
    assert "role" in answer.json()["error"]["fields"]
    me.refresh_from_db()
    assert me.role == role


def test_an_administrator_cannot_disable_themselves_through_the_api():
    me = person("boss", Role.ADMIN)

    answer = signed_in("boss").patch(f"/api/v1/users/{me.pk}", {"is_active": False}, format="json")

    assert answer.status_code == 409 and answer.json()["error"]["code"] == "self_disable"
    me.refresh_from_db()
    assert me.is_active


def test_an_administrator_still_demotes_another_one():
    person("boss", Role.ADMIN)
    deputy = person("deputy", Role.ADMIN)

    answer = signed_in("boss").patch(f"/api/v1/users/{deputy.pk}", {"role": "SUPERVISOR"}, format="json")

    assert answer.status_code == 200 and answer.json()["role"] == "SUPERVISOR"


def test_the_last_administrator_cannot_be_demoted_by_a_request_that_was_allowed_a_moment_ago():
    # given: two admins; each opens the other's page and presses "demote" at the same moment
    first, second = person("first", Role.ADMIN), person("second", Role.ADMIN)
    second_as_their_request_saw_them = User.objects.get(pk=second.pk)  # checked as ADMIN before the change

    # when: the first demotion lands, then the second one
    update_user(second, actor=first, role=Role.AGENT)
    with pytest.raises(DomainError) as refused:
        update_user(User.objects.get(pk=first.pk), actor=second_as_their_request_saw_them, role=Role.AGENT)

    # then: the second is refused: first is the last active administrator
    assert refused.value.code == "last_admin"
    assert User.objects.get(pk=first.pk).role == Role.ADMIN


def test_the_last_administrator_cannot_be_disabled():
    first, second = person("first", Role.ADMIN), person("second", Role.ADMIN)
    second_as_their_request_saw_them = User.objects.get(pk=second.pk)
    update_user(second, actor=first, is_active=False)

    with pytest.raises(DomainError) as refused:
        update_user(User.objects.get(pk=first.pk), actor=second_as_their_request_saw_them, is_active=False)

    assert refused.value.code == "last_admin"
    assert User.objects.get(pk=first.pk).is_active


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_administrator():
    # given: exactly two admins, both allowed to manage users
    first, second = person("first", Role.ADMIN), person("second", Role.ADMIN)
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(target: User, actor: User) -> None:
        try:
            barrier.wait(timeout=10)
            update_user(User.objects.get(pk=target.pk), actor=actor, role=Role.AGENT)
            outcomes.append("demoted")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    # when: each demotes the other at the same time
    threads = [threading.Thread(target=demote, args=pair) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then: one demotion went through, the other was refused, and one administrator is left
    assert sorted(outcomes) == ["demoted", "last_admin"]
    assert User.objects.filter(role__in=[Role.ADMIN, Role.SUPER_ADMIN], is_active=True).count() == 1


def test_an_administrator_cannot_lower_their_own_role_in_the_admin():
    me = person("boss", Role.ADMIN)
    person("other-admin", Role.ADMIN)
    browser = Client()
    browser.force_login(me)

    page = browser.post(
        f"/admin/accounts/user/{me.pk}/change/",
        {"username": "boss", "first_name": "", "last_name": "", "email": "", "role": "AGENT", "is_active": "on"},
    )

    assert page.status_code == 200  # the form again, with the error
    assert "You cannot lower your own role" in page.content.decode()
    me.refresh_from_db()
    assert me.role == Role.ADMIN


def test_a_super_admin_cannot_delete_themselves_in_the_admin():
    me = person("root", Role.SUPER_ADMIN)
    person("other-admin", Role.ADMIN)
    browser = Client()
    browser.force_login(me)

    answer = browser.post(f"/admin/accounts/user/{me.pk}/delete/", {"post": "yes"}, follow=True)

    assert "You cannot delete your own account" in answer.content.decode()
    assert User.objects.filter(pk=me.pk).exists()


@pytest.mark.parametrize(
    ("expires_at", "problem"),
    [
        ("1440-01-01T00:00:00Z", "must be in the future"),
        ((timezone.now() - timedelta(minutes=1)).isoformat(), "must be in the future"),
        ("9999-12-31T00:00:00Z", "must be within"),
    ],
)
def test_an_api_key_cannot_be_created_expired_or_for_centuries(expires_at, problem):
    person("boss", Role.ADMIN)

    answer = signed_in("boss").post(
        "/api/v1/api-keys", {"name": "grafana", "scopes": ["alerts:write"], "expires_at": expires_at}, format="json"
    )

    assert answer.status_code == 400
    assert problem in answer.json()["error"]["fields"]["expires_at"]
    assert not APIKey.objects.exists()


def test_an_api_key_with_a_sane_expiry_is_created():
    person("boss", Role.ADMIN)
    in_ninety_days = (timezone.now() + timedelta(days=90)).isoformat()

    answer = signed_in("boss").post(
        "/api/v1/api-keys", {"name": "grafana", "scopes": ["alerts:write"], "expires_at": in_ninety_days}, format="json"
    )

    assert answer.status_code == 201 and answer.json()["expires_at"]
