"""A queryset compiled once gives what the ORM gives: the same instance, its fields converted as the
ORM converts them, its select_related object loaded, and its lock taken only inside a transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from config.compiled_queries import CompiledQuery
from incidents.models import Incident
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
