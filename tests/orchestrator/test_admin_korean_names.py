"""The admin in Korean down to model and field names: a lead whose browser asks for Korean reads
"호출 정책", "최대 통화 수", "장애" rather than English words the translation never reached."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import Client
from django.utils import translation

from accounts.models import Role
from incidents.services import open_incident
from tests import factories
from tests.accounts.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db

OUR_APPS = ("incidents", "orchestrator", "accounts", "integrations")


@pytest.fixture
def admin_client(settings) -> Client:
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    return client


def test_the_admin_index_names_our_models_in_korean(admin_client):
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    for korean in ("호출 정책", "담당자", "장애", "통화", "API 키", "감사 기록", "연동", "발신 메시지"):
        assert korean in page
    for english in ("Escalation policies", "Call attempts", "Audit events", "Outbound messages"):
        assert english not in page


def test_a_policy_form_labels_and_help_in_korean(admin_client):
    page = admin_client.get("/admin/incidents/escalationpolicy/add/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    assert "최대 통화 수" in page and "포기하기 전까지 거는 통화 수" in page  # max attempts, its help
    assert "울림 제한 시간(초)" in page and "Max attempts" not in page


def test_the_state_filter_offers_the_states_in_korean(admin_client):
    factories.policy(factories.contact("Kim"))
    open_incident(summary="DB down")

    page = admin_client.get("/admin/incidents/incident/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    for state in ("호출 중", "소진: 아무도 받지 않음", "확인됨", "해결됨"):
        assert f"{state}</a>" in page
    assert "Triggered" not in page


def test_every_model_and_field_of_ours_has_a_korean_name():
    # every name a person can meet in the admin is translated (ids and Django's own fields aside)
    untranslated = []
    with translation.override("ko"):
        for app in OUR_APPS:
            for model in apps.get_app_config(app).get_models():
                meta = model._meta
                names = [str(meta.verbose_name), str(meta.verbose_name_plural)]
                names += [
                    str(field.verbose_name)
                    for field in meta.get_fields()
                    if getattr(field, "concrete", False) and field.model is model and field.name != "id"
                ]
                # "IP" reads the same in Korean
                untranslated += [
                    f"{app}.{meta.model_name}: {name}" for name in names if name.isascii() and name != "IP"
                ]
    assert untranslated == []
