"""Statements compiled once give what the ORM gives: the same instance, its fields converted as the
ORM converts them, its select_related object loaded, and its lock taken only inside a transaction;
inserted and updated rows stored as the ORM stores them, with the same signals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import signals
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.compiled_queries import CompiledInsert, CompiledQuery, save_fields
from incidents.models import Incident, IncidentEvent, PolicyContact
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from tests import factories

pytestmark = pytest.mark.django_db

FIELDS = [field.attname for field in Incident._meta.concrete_fields]


def incident_of_call() -> CompiledQuery[Incident]:
    return CompiledQuery(
        lambda token: (
            Incident.objects.select_for_update(of=("self",)).select_related("policy").filter(attempts__token=token)
        ),
        "placeholder",
    )


def test_each_run_returns_what_the_orm_returns_for_its_own_value():
    # given two incidents, each with a call, and a query compiled once
    factories.policy(factories.contact("Kim", 1), record_calls=True)
    incidents = [open_incident(summary=summary).incident for summary in ("디스크 가득 참", "결제 장애")]
    tokens = [CallAttempt.objects.get(incident=incident).token for incident in incidents]
    query = incident_of_call()

    for incident, token in zip(incidents, tokens, strict=True):
        with transaction.atomic():
            # when it runs with each call's token
            with CaptureQueriesContext(connection) as queries:
                found = query.first(token)
                policy = found.policy
            expected = Incident.objects.select_related("policy").get(pk=incident.pk)

        # then it is that call's incident, field for field (datetimes as aware datetimes on every
        # database), with its policy loaded in the same statement
        assert len(queries.captured_queries) == 1
        assert [getattr(found, name) for name in FIELDS] == [getattr(expected, name) for name in FIELDS]
        assert found.created_at.tzinfo is not None
        assert policy.pk == expected.policy.pk and policy.record_calls is True
        assert found._state.adding is False and found._state.db == "default"

    # and a value that matches nothing gives None
    with transaction.atomic():
        assert query.first("no-such-token") is None


@pytest.mark.django_db(transaction=True)  # a test in a transaction of its own would never be in autocommit
def test_a_locking_query_refuses_to_run_outside_a_transaction():
    factories.policy(factories.contact("Kim", 1))
    token = CallAttempt.objects.get(incident=open_incident(summary="x").incident).token
    query = incident_of_call()
    with transaction.atomic():
        query.first(token)  # compiled inside a transaction

    # when it runs again in autocommit, its lock would end with the statement: refused
    with pytest.raises(TransactionManagementError):
        query.first(token)


def test_a_queryset_that_ignores_the_placeholder_is_refused():
    query = CompiledQuery(lambda token: Incident.objects.filter(summary="fixed"), "placeholder")
    with pytest.raises(ValueError, match="placeholder"):
        query.first("anything")


def test_all_returns_every_row_in_the_querysets_order_with_its_related_object():
    # given a policy of three people in a chosen order, one of them inactive, and another policy
    kim, lee, park = (factories.contact(name, n) for n, name in enumerate(("Kim", "Lee", "Park"), start=1))
    policy = factories.policy(park, kim, lee)
    factories.policy(factories.contact("Choi", 9), name="other")
    Contact = type(lee)
    Contact.objects.filter(pk=lee.pk).update(active=False)
    query = CompiledQuery(
        lambda policy_id: PolicyContact.objects.filter(policy_id=policy_id).select_related("contact"), -1
    )

    # when it runs for the policy
    with CaptureQueriesContext(connection) as queries:
        members = query.all(policy.pk)
        contacts = [(member.contact.name, member.contact.active) for member in members]

    # then it is the ORM's list, in the policy's order, each contact loaded in the same statement
    expected = PolicyContact.objects.filter(policy=policy).select_related("contact")
    assert [member.pk for member in members] == [member.pk for member in expected]
    assert contacts == [("Park", True), ("Kim", True), ("Lee", False)]
    assert len(queries.captured_queries) == 1
    # and a value that matches nothing gives an empty list
    assert query.all(10**9) == []


def test_a_compiled_insert_stores_and_returns_what_the_orms_create_does():
    # given an incident, and the timeline row's INSERT compiled once
    factories.policy(factories.contact("Kim", 1))
    incident = open_incident(summary="disk full").incident
    insert = CompiledInsert(IncidentEvent)
    values = {
        "kind": "ringing",
        "actor": "system",
        "message": "ringing Kim",
        "attempt_id": 7,
        "data": {"키": [1, None]},
    }
    saved = []
    receiver = lambda sender, instance, created, **kwargs: saved.append((sender, instance.pk, created))  # noqa: E731
    signals.post_save.connect(receiver, sender=IncidentEvent)
    try:
        # when a row is created through it, twice, and once through the ORM
        with CaptureQueriesContext(connection) as queries:
            rows = [insert.create(incident=incident, **values) for _ in range(2)]
        through_orm = IncidentEvent.objects.create(incident=incident, **values)
    finally:
        signals.post_save.disconnect(receiver, sender=IncidentEvent)

    # then each is one statement, and the rows read back equal the ORM's, field for field
    assert len(queries.captured_queries) == 2
    columns = [field.attname for field in IncidentEvent._meta.concrete_fields if field.attname not in ("id", "at")]
    for row in rows:
        assert row.pk and row._state.adding is False and row._state.db == "default"
        stored = IncidentEvent.objects.get(pk=row.pk)
        assert [getattr(stored, name) for name in columns] == [getattr(through_orm, name) for name in columns]
        assert stored.at == row.at and stored.at.tzinfo is not None
    assert rows[0].pk < rows[1].pk < through_orm.pk
    # and post_save was sent for each, as the ORM sends it
    assert saved == [
        (IncidentEvent, rows[0].pk, True),
        (IncidentEvent, rows[1].pk, True),
        (IncidentEvent, through_orm.pk, True),
    ]


def test_save_fields_writes_what_the_orms_save_with_update_fields_writes():
    # given two incidents alike, one saved through the ORM and one through save_fields
    factories.policy(factories.contact("Kim", 1))
    through_orm, compiled = (open_incident(summary=name).incident for name in ("orm", "compiled"))
    signalled = []
    receiver = lambda sender, instance, created, update_fields, **kwargs: signalled.append((instance.pk, update_fields))  # noqa: E731
    signals.post_save.connect(receiver, sender=Incident)
    try:
        for deadline in (timezone.now() + timedelta(seconds=20), None):  # a value, then NULL
            for incident in (through_orm, compiled):
                incident.next_action_at, incident.current_step = deadline, 3
            before = Incident.objects.get(pk=compiled.pk).updated_at
            # when the same fields are saved both ways
            through_orm.save(update_fields=["next_action_at", "current_step", "updated_at"])
            with CaptureQueriesContext(connection) as queries:
                save_fields(compiled, ["next_action_at", "current_step", "updated_at"])

            # then it is one statement, and the stored rows agree (auto_now moved updated_at)
            assert len(queries.captured_queries) == 1
            orm_row, compiled_row = (Incident.objects.get(pk=incident.pk) for incident in (through_orm, compiled))
            assert compiled_row.next_action_at == orm_row.next_action_at == deadline
            assert compiled_row.current_step == orm_row.current_step == 3
            assert compiled_row.updated_at > before and compiled_row.updated_at == compiled.updated_at
            assert compiled_row.summary == "compiled"  # other columns untouched
    finally:
        signals.post_save.disconnect(receiver, sender=Incident)
    fields = frozenset({"next_action_at", "current_step", "updated_at"})
    assert signalled == [(through_orm.pk, fields), (compiled.pk, fields)] * 2


def test_save_fields_of_a_row_that_is_gone_is_an_error_as_with_the_orm():
    factories.policy(factories.contact("Kim", 1))
    incident = open_incident(summary="gone").incident
    Incident.objects.filter(pk=incident.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(incident, ["current_step"])
