"""Errors stored before the scrubbing existed lose their secret URL paths when the migration runs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

SLACK_URL = "https://hooks.slack.com/services/T0/B0/oldSecretPath42"
OLD_ERROR = (
    "connection failed: HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries exceeded "
    "with url: /services/T0/B0/oldSecretPath42 (Caused by NewConnectionError(...))"
)


@pytest.mark.django_db(transaction=True)
def test_the_migration_scrubs_errors_stored_before_it():
    # given the database as it was before, with an error that quotes a Slack URL's secret path
    executor = MigrationExecutor(connection)
    executor.migrate([("integrations", "0001_initial")])
    old_apps = executor.loader.project_state([("integrations", "0001_initial")]).apps
    integration = old_apps.get_model("integrations", "Integration").objects.create(
        name="ops-slack", kind="slack", target=SLACK_URL, events=[]
    )
    message = old_apps.get_model("integrations", "OutboundMessage").objects.create(
        integration=integration, event="incident.exhausted", dedup_key="k", status="pending", last_error=OLD_ERROR
    )
    old_apps.get_model("integrations", "DeliveryAttempt").objects.create(
        message=message, number=1, started_at=timezone.now(), error=OLD_ERROR
    )

    # when the migrations run
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then both stored errors keep what happened but not the path
    from integrations.models import DeliveryAttempt, OutboundMessage

    expected = OLD_ERROR.replace("/services/T0/B0/oldSecretPath42", "/…")
    assert OutboundMessage.objects.get().last_error == expected
    assert DeliveryAttempt.objects.get().error == expected
