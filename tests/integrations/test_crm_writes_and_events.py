"""The CRM providers (Salesforce, HubSpot, Dynamics 365) writing records, through the messages API and
our events, each against a local server that speaks its REST API (tests/integrations/crm_servers.py):
writes arrive in the documented shape, and our events become cases and logged calls."""

from __future__ import annotations

import pytest

from integrations import registry, rendering
from integrations.models import Integration, MessageStatus
from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.crm_helpers import RECORDING_STORED, send

pytestmark = pytest.mark.django_db


# --- writes --------------------------------------------------------------------------------------


def test_salesforce_gets_a_case_and_a_call_task_in_the_documented_shape(sender, salesforce):
    kim = salesforce.add_contact(LastName="Kim", Email="minsu@example.com")

    case = send(
        sender,
        "crm_salesforce",
        method="create_case",
        subject="Refund not received",
        description="Order 881",
        priority="high",
        customer_id=kim,
    )
    call = send(
        sender,
        "crm_salesforce",
        method="log_interaction",
        customer_id=kim,
        channel="voice",
        summary="Asked about the refund",
        started_at="2024-05-01T09:30:00Z",
        duration_seconds=125,
        recording_id="rec-77",
    )

    assert case.status_code == call.status_code == 200
    [stored_case] = salesforce.records["Case"].values()
    assert stored_case == {
        "Id": case.json()["result"]["id"],
        "Subject": "Refund not received",
        "Description": "Order 881",
        "Priority": "High",
        "ContactId": kim,
    }
    [task] = salesforce.records["Task"].values()
    assert (task["WhoId"], task["TaskSubtype"], task["CallDurationInSeconds"], task["ActivityDate"]) == (
        kim,
        "Call",
        125,
        "2024-05-01",
    )
    assert task["Subject"] == "Call: Asked about the refund" and task["Status"] == "Completed"
    assert "Recording: rec-77" in task["Description"]


def test_hubspot_upserts_by_email_and_logs_a_call_a_chat_and_a_ticket_on_the_contact(sender, hubspot):
    kim = hubspot.add_contact(email="minsu@example.com", lastname="Kim")

    updated = send(sender, "crm_hubspot", method="upsert_customer", email="minsu@example.com", first_name="Minsu")
    created = send(sender, "crm_hubspot", method="upsert_customer", email="new@example.com", last_name="Park")
    call = send(
        sender,
        "crm_hubspot",
        method="log_interaction",
        customer_id=kim,
        summary="Refund",
        started_at="2024-05-01T09:30:00+09:00",
        duration_seconds=90,
    )
    chat = send(
        sender,
        "crm_hubspot",
        method="log_interaction",
        customer_id=kim,
        channel="chat",
        summary="Asked for the invoice",
        started_at="2024-05-01T10:00:00Z",
        duration_seconds=300,
    )
    ticket = send(
        sender, "crm_hubspot", method="create_case", subject="Refund not received", priority="low", customer_id=kim
    )

    assert updated.json()["result"] == {"id": kim, "created": False}
    assert created.json()["result"]["created"] is True
    assert hubspot.objects["contacts"][kim] == {"email": "minsu@example.com", "lastname": "Kim", "firstname": "Minsu"}
    [stored_call] = hubspot.objects["calls"].values()
    assert stored_call["hs_call_duration"] == "90000"  # milliseconds
    assert stored_call["hs_timestamp"] == "2024-05-01T00:30:00.000Z"
    [stored_ticket] = hubspot.objects["tickets"].values()
    assert (stored_ticket["hs_pipeline"], stored_ticket["hs_pipeline_stage"], stored_ticket["hs_ticket_priority"]) == (
        "0",
        "1",
        "LOW",
    )
    assert hubspot.associations == [
        ("calls", call.json()["result"]["id"], kim, 194),
        ("notes", chat.json()["result"]["id"], kim, 202),
        ("tickets", ticket.json()["result"]["id"], kim, 16),
    ]
    # a chat is a note on the contact, not a call
    [note] = hubspot.objects["notes"].values()
    assert note["hs_note_body"].startswith("Chat: Asked for the invoice")


def test_dynamics_gets_a_phone_call_and_a_case_and_an_update_never_creates(sender, dynamics):
    kim = dynamics.add("contacts", lastname="Kim", emailaddress1="minsu@example.com")
    missing = "11111111-2222-3333-4444-555555555555"

    call = send(
        sender,
        "crm_dynamics",
        method="log_interaction",
        customer_id=kim,
        summary="Refund",
        started_at="2024-05-01T09:30:00Z",
        duration_seconds=61,
    )
    case = send(
        sender, "crm_dynamics", method="create_case", subject="Refund not received", priority="high", customer_id=kim
    )
    update_of_nobody = send(sender, "crm_dynamics", method="upsert_customer", customer_id=missing, first_name="Ghost")

    [phonecall] = dynamics.rows["phonecalls"].values()
    assert (phonecall["regardingobjectid_contact"], phonecall["actualdurationminutes"]) == (kim, 2)
    assert (phonecall["actualstart"], phonecall["actualend"]) == ("2024-05-01T09:30:00Z", "2024-05-01T09:31:01Z")
    assert call.json()["result"]["id"] == phonecall["activityid"]
    [incident] = dynamics.rows["incidents"].values()
    assert (incident["title"], incident["prioritycode"], incident["customerid_contact"]) == (
        "Refund not received",
        1,
        kim,
    )
    assert case.json()["result"]["ticket_number"] == incident["ticketnumber"]
    # PATCH with If-Match: * is refused for a missing id instead of creating it
    assert update_of_nobody.status_code == 502
    assert (
        f"Dynamics 365 answered HTTP 404 0x80040217: contact With Id = {missing} Does Not Exist"
        in update_of_nobody.json()["error"]["message"]
    )
    assert missing not in dynamics.rows["contacts"]


def test_a_dynamics_case_without_a_customer_goes_to_the_configured_account_or_is_refused(sender, dynamics):
    refused = send(sender, "crm_dynamics", method="create_case", subject="Disk full")
    account = dynamics.add("accounts", name="On-call operations")
    registry.update_integration(
        Integration.objects.get(integration_id="crm_dynamics"), {"options": {"case_account_id": account}}
    )
    accepted = send(sender, "crm_dynamics", method="create_case", subject="Disk full")

    assert refused.status_code == 502
    assert "needs a customer" in refused.json()["error"]["message"]
    assert accepted.status_code == 200, accepted.content
    [incident] = dynamics.rows["incidents"].values()
    assert incident["customerid_account"] == account
    assert not [seen for seen in dynamics.api_requests() if seen.method == "POST"][:-1]  # the refused one sent nothing


# --- our events ----------------------------------------------------------------------------------


def test_an_incident_event_becomes_a_case_and_a_stored_recording_a_call_task(salesforce):
    kim = salesforce.add_contact(LastName="Kim")

    # when an incident is exhausted and a customer's call recording is stored
    [case_message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    [call_message] = notify(
        "recording.stored", {**RECORDING_STORED, "customer_id": kim}, dedup_key="recording:77:stored"
    )
    [internal] = notify("recording.stored", RECORDING_STORED, dedup_key="recording:78:stored")
    delivered = [deliver(message.pk) for message in (case_message, call_message, internal)]

    # then Salesforce has a high-priority case and a call on the contact; a recording without a customer is skipped
    assert [message.status for message in delivered] == [MessageStatus.DELIVERED] * 3
    [case] = salesforce.records["Case"].values()
    language = rendering.language_of(Integration.objects.get(integration_id="crm_salesforce"))
    assert case["Subject"] == rendering.email_subject("incident.exhausted", EXHAUSTED_PAYLOAD, language=language)
    assert case["Subject"].startswith("[CRITICAL] Disk full on db-1")
    assert case["Priority"] == "High"
    assert "nobody pressed 1 after 5 calls" in case["Description"]
    [task] = salesforce.records["Task"].values()
    assert (task["WhoId"], task["TaskSubtype"], task["CallDurationInSeconds"]) == (kim, "Call", 125)
    assert task["Subject"] == "Call: Call recorded, agent agent-3, session sess-9."
    assert "Recording link: https://oncall.example.com/api/v1/recordings/77" in task["Description"]
    assert delivered[2].delivery_attempts.get().excerpt == '{"skipped":"Not logged: the recording names no customer."}'
