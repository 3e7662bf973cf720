"""Status-page clients and incidents in the states a responder meets at night."""

from __future__ import annotations

from django.test import Client

from incidents.services import open_incident
from orchestrator.services import apply_call_status
from tests import factories
from tests.accounts.helpers import person


def page_client(username: str, role: str) -> Client:
    """A browser-like client holding a status-page session for a new person of `role`."""
    client = Client()
    client.raise_request_exception = False  # a crash is an answer to report (500), not a test error
    client.force_login(person(username, role))
    return client


def ringing_incident(summary: str = "DB down", *, contact_name: str = "Kim", **options):
    """An incident whose first call rings `contact_name` (the carrier reported "ringing")."""
    options.setdefault("is_default", False)
    policy = factories.policy(factories.contact(contact_name, 1), factories.contact("Lee", 2), **options)
    incident = open_incident(summary=summary, policy=policy).incident
    apply_call_status(incident.attempts.get(step=1).token, "ringing", provider_call_id="CA-test-1")
    incident.refresh_from_db()
    return incident


def exhausted_incident(summary: str = "Disk full"):
    """An incident whose only allowed call went unanswered: every call made, nobody pressed 1."""
    policy = factories.policy(factories.contact("Park", 3), max_attempts=1, is_default=False)
    incident = open_incident(summary=summary, policy=policy).incident
    token = incident.attempts.get(step=1).token
    apply_call_status(token, "ringing", provider_call_id="CA-test-3")
    apply_call_status(token, "no_answer")
    incident.refresh_from_db()
    assert incident.state == "exhausted"
    return incident
