"""The record (incidents) never depends on the engine (orchestrator): the engine uses the record and
registers itself with it. A reader then knows which app is which, and the record can be read alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts.models import Role
from incidents import services
from incidents.models import Incident, IncidentEvent
from orchestrator.engine import PhoneEscalation
from orchestrator.models import CallAttempt
from tests import factories
from tests.accounts.helpers import PASSWORD, person

INCIDENTS = Path(__file__).resolve().parents[2] / "incidents"


def _imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    names: set[str] = set()
    for node in ast.walk(tree):  # function-local imports too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_of_the_record_imports_the_engine():
    # given: every module of the incidents app except its migrations (history may name old links)
    modules = [path for path in INCIDENTS.rglob("*.py") if "migrations" not in path.relative_to(INCIDENTS).parts]
    assert modules, f"no modules found under {INCIDENTS}"

    # when: their imports are read
    offenders = {
        str(path.relative_to(INCIDENTS.parent)): sorted(
            name for name in _imported_modules(path) if name == "orchestrator" or name.startswith("orchestrator.")
        )
        for path in modules
    }

    # then: none of them imports orchestrator
    assert {path: names for path, names in offenders.items() if names} == {}


def test_no_model_of_the_record_points_at_the_engine():
    # when: the incidents models' relations are listed
    targets = {
        f"{model.__name__}.{field.name}": field.related_model._meta.app_label
        for model in apps.get_app_config("incidents").get_models()
        for field in model._meta.get_fields()
        if field.concrete and field.is_relation
    }

    # then: none leads to an orchestrator model
    assert {name: app for name, app in targets.items() if app == "orchestrator"} == {}


@pytest.fixture
def no_engine():
    """Django as it would run without the engine app: nothing registered."""
    services.set_escalation_engine(None)
    yield
    services.set_escalation_engine(PhoneEscalation())


@pytest.mark.django_db
def test_an_incident_is_refused_loudly_when_no_engine_would_ring_it(no_engine):
    # given: a policy, and no engine registered
    factories.policy(factories.contact("Kim", 1))

    # when / then: opening an incident fails loudly ...
    with pytest.raises(ImproperlyConfigured, match="would open and never ring"):
        services.open_incident(summary="DB down")

    # ... and nothing was stored that would wait for a call forever
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_the_engine_registered_at_startup_queues_the_first_call_in_the_same_transaction():
    # given: a policy with one contact, and the engine Django registered at startup
    kim = factories.contact("Kim", 1)
    factories.policy(kim)

    # when: an incident opens
    result = services.open_incident(summary="DB down")

    # then: its first call is queued for Kim
    attempts = CallAttempt.objects.filter(incident=result.incident)
    assert [(attempt.step, attempt.contact_id, attempt.status) for attempt in attempts] == [(1, kim.pk, "queued")]


@pytest.mark.django_db(transaction=True)
def test_timeline_rows_keep_their_call_when_the_foreign_key_to_the_engine_is_dropped(system_client):
    # given: the database before the change, with a timeline row about the first call
    before = [("incidents", "0004_explicit_states"), ("orchestrator", "0002_explicit_states")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    contact = old.get_model("incidents", "Contact").objects.create(name="Kim", phone="+821012345671")
    policy = old.get_model("incidents", "EscalationPolicy").objects.create(name="old", is_default=True)
    incident = old.get_model("incidents", "Incident").objects.create(summary="DB down", policy=policy)
    attempt = old.get_model("orchestrator", "CallAttempt").objects.create(
        incident=incident, step=1, contact=contact, to_number=contact.phone
    )
    old.get_model("incidents", "IncidentEvent").objects.create(
        incident=incident, kind="dialing", message="carrier accepted the call", attempt=attempt
    )

    # when: the migrations run
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then: the row still names its call, and the incident's timeline shows which call it was about
    assert IncidentEvent.objects.get(kind="dialing").attempt_id == attempt.pk
    timeline = system_client.get(f"/api/v1/incidents/{incident.pk}").json()["timeline"]
    assert [(row["kind"], row["attempt_step"]) for row in timeline] == [("dialing", 1)]


@pytest.mark.django_db
def test_the_admin_incident_page_shows_the_calls_and_which_call_each_timeline_row_was_about(settings):
    # given: an ADMIN, and an incident whose first call was queued by the engine
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    factories.policy(factories.contact("Kim", 1))
    incident = services.open_incident(summary="DB down").incident
    services.record_event(incident, "dialing", message="carrier accepted", attempt=incident.attempts.get())
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})

    # when: the ADMIN opens the incident in the admin (still at /admin/incidents/incident/)
    response = client.get(f"/admin/incidents/incident/{incident.pk}/change/")

    # then: the page shows the call attempts and the timeline row's call
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="attempts-group"' in page and "call 1" in page  # the calls inline, and the row's call
