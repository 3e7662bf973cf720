"""The CRM providers (Salesforce, HubSpot, Dynamics 365) through the messages API and our events, each
against a local server that speaks its REST API (tests/integrations/crm_servers.py): lookups answer
with the CRM's data, writes arrive in the documented shape, tokens are renewed once, rate limits are
honoured, and a CRM's error reaches the caller readable and without a secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import InvalidInput
from integrations import registry, rendering
from integrations.models import Integration, MessageStatus, OutboundMessage
from integrations.services import deliver, notify, send_async
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.crm_servers import HubSpotServer, SalesforceServer
from tests.integrations.dynamics_server import DynamicsServer

pytestmark = pytest.mark.django_db

SF_SECRET = "sf-secret-never-shown-7d1c"
HUBSPOT_TOKEN = "pat-na1-never-shown-0c9e"
DV_SECRET = "dv-secret-never-shown-51aa"
RECORDING_STORED = {
    "recording_id": 77,
    "kind": "voice",
    "session_id": "sess-9",
    "agent_id": "agent-3",
    "duration_seconds": 125.4,
    "format": "wav",
    "started_at": "2024-05-01T09:30:00+00:00",
    "url": "https://oncall.example.com/api/v1/recordings/77",
}


@pytest.fixture
def sender(make_api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('integrations:write', name='contact-center')}")
    return client


def send(client, integration_id: str, message_type: str = "sync", **payload):
    body = {"message_type": message_type, "payload": payload}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def register(integration_id: str, provider: str, **fields):
    return registry.create_integration(
        {"integration_id": integration_id, "name": integration_id, "type": "crm", "provider": provider, **fields}
    )


@pytest.fixture
def salesforce():
    with SalesforceServer(client_id="sf-consumer", client_secret=SF_SECRET) as server:
        register(
            "crm_salesforce",
            "salesforce",
            endpoint_url=server.url,
            auth_type="oauth2_client_credentials",
            auth_config={
                "client_id": "sf-consumer",
                "client_secret": SF_SECRET,
                "token_url": f"{server.url}{server.token_path}",
            },
        )
        yield server


@pytest.fixture
def hubspot():
    with HubSpotServer(token=HUBSPOT_TOKEN) as server:
        register(
            "crm_hubspot", "hubspot", endpoint_url=server.url, auth_type="bearer", auth_config={"token": HUBSPOT_TOKEN}
        )
        yield server


@pytest.fixture
def dynamics():
    with DynamicsServer(client_id="dv-app", client_secret=DV_SECRET) as server:
        register(
            "crm_dynamics",
            "dynamics",
            endpoint_url=server.url,
            auth_type="oauth2_client_credentials",
            auth_config={
                "client_id": "dv-app",
                "client_secret": DV_SECRET,
                "token_url": server.token_url,
                "scope": f"{server.url}/.default",
            },
        )
        yield server


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [customer["name"] for customer in response.json()["result"]["customers"]]


# --- lookups -------------------------------------------------------------------------------------


def test_salesforce_finds_a_customer_by_id_phone_and_email(sender, salesforce):
    # given a contact in the org
    kim = salesforce.add_contact(
        FirstName="Minsu", LastName="Kim", Name="Minsu Kim", Email="minsu@example.com", Phone="+82 2 555 0100"
    )
    salesforce.add_contact(FirstName="Other", LastName="Person", Name="Other Person", Email="other@example.com")

    # when it is looked up three ways
    by_id = send(sender, "crm_salesforce", method="get_customer_info", customer_id=kim)
    by_phone = send(sender, "crm_salesforce", method="get_customer_info", phone="+82 2 555 0100")
    by_email = send(sender, "crm_salesforce", method="get_customer_info", email="minsu@example.com")

    # then each answer carries the CRM's contact
    assert names(by_id) == names(by_phone) == names(by_email) == ["Minsu Kim"]
    customer = by_email.json()["result"]["customers"][0]
    assert (customer["id"], customer["phone"], customer["record"]["Email"]) == (
        kim,
        "+82 2 555 0100",
        "minsu@example.com",
    )
    # through the documented paths, with the token the token endpoint issued
    token_request, *api = salesforce.requests
    assert token_request.form()["grant_type"] == "client_credentials"
    assert api[0].path == f"/services/data/v61.0/sobjects/Contact/{kim}"
    assert api[1].query["q"].startswith("SELECT Id, FirstName")
    assert "WHERE Phone = '+82 2 555 0100' OR MobilePhone = '+82 2 555 0100'" in api[1].query["q"]
    assert {seen.headers["Authorization"] for seen in api} == {f"Bearer {next(iter(salesforce.valid_tokens))}"}


def test_a_quote_in_an_email_is_escaped_in_soql_and_an_injection_finds_nothing(sender, salesforce):
    salesforce.add_contact(LastName="O'Brien", Name="Pat O'Brien", Email="o'brien@example.com")
    salesforce.add_contact(LastName="Lee", Name="Jia Lee", Email="jia@example.com")

    quoted = send(sender, "crm_salesforce", method="get_customer_info", email="o'brien@example.com")
    injected = send(sender, "crm_salesforce", method="get_customer_info", email="x'OR'1'='1@example.com")

    assert names(quoted) == ["Pat O'Brien"]
    assert names(injected) == []
    assert "WHERE Email = 'x\\'OR\\'1\\'=\\'1@example.com'" in salesforce.api_requests()[-1].query["q"]


def test_hubspot_finds_a_customer_by_id_phone_and_email(sender, hubspot):
    kim = hubspot.add_contact(firstname="Minsu", lastname="Kim", email="minsu@example.com", mobilephone="+821055501000")

    by_id = send(sender, "crm_hubspot", method="get_customer_info", customer_id=kim)
    by_phone = send(sender, "crm_hubspot", method="get_customer_info", phone="+821055501000")
    by_email = send(sender, "crm_hubspot", method="get_customer_info", email="minsu@example.com")

    assert names(by_id) == names(by_phone) == names(by_email) == ["Minsu Kim"]
    assert by_phone.json()["result"]["customers"][0]["mobile_phone"] == "+821055501000"
    get, phone_search, _ = hubspot.requests
    assert (get.method, get.path, get.query["properties"]) == (
        "GET",
        f"/crm/v3/objects/contacts/{kim}",
        "firstname,lastname,email,phone,mobilephone",
    )
    assert get.headers["Authorization"] == f"Bearer {HUBSPOT_TOKEN}"
    # phone or mobile phone: two filter groups, which HubSpot ORs
    assert [group["filters"][0]["propertyName"] for group in phone_search.json()["filterGroups"]] == [
        "phone",
        "mobilephone",
    ]


def test_dynamics_finds_a_customer_by_id_phone_and_email_and_escapes_odata_literals(sender, dynamics):
    kim = dynamics.add(
        "contacts",
        firstname="Minsu",
        lastname="Kim",
        fullname="Minsu Kim",
        emailaddress1="minsu@example.com",
        telephone1="+82 2 555 0100",
    )
    dynamics.add("contacts", lastname="O'Brien", fullname="Pat O'Brien", emailaddress1="o'brien@example.com")

    by_id = send(sender, "crm_dynamics", method="get_customer_info", customer_id=kim)
    by_phone = send(sender, "crm_dynamics", method="get_customer_info", phone="+82 2 555 0100")
    by_email = send(sender, "crm_dynamics", method="get_customer_info", email="minsu@example.com")
    quoted = send(sender, "crm_dynamics", method="get_customer_info", email="o'brien@example.com")
    injected = send(sender, "crm_dynamics", method="get_customer_info", email="x'or'1'eq'1@example.com")

    assert names(by_id) == names(by_phone) == names(by_email) == ["Minsu Kim"]
    assert names(quoted) == ["Pat O'Brien"]
    assert names(injected) == []
    api = dynamics.api_requests()
    assert api[0].path == f"/api/data/v9.2/contacts({kim})"
    assert api[-1].query["$filter"] == "emailaddress1 eq 'x''or''1''eq''1@example.com'"
    assert all(seen.headers["OData-Version"] == "4.0" and seen.headers["Accept"] == "application/json" for seen in api)
    # the token was asked for the org's scope
    assert dynamics.requests[0].form()["scope"] == f"{dynamics.url}/.default"


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


# --- tokens, rate limits, errors -----------------------------------------------------------------


def test_an_expired_salesforce_session_is_renewed_once_with_a_jwt_bearer_assertion(sender):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with SalesforceServer(client_id="sf-consumer", public_key=key.public_key(), username="bot@example.com") as server:
        register(
            "crm_sf_jwt",
            "salesforce",
            endpoint_url=server.url,
            auth_type="oauth2_jwt_bearer",
            auth_config={
                "client_id": "sf-consumer",
                "subject": "bot@example.com",
                "audience": "https://login.salesforce.com",
                "token_url": f"{server.url}{server.token_path}",
                "private_key": pem,
            },
        )
        kim = server.add_contact(LastName="Kim", Name="Minsu Kim")
        first = send(sender, "crm_sf_jwt", method="get_customer_info", customer_id=kim)

        # when the session expires on Salesforce's side
        server.expire_tokens()
        second = send(sender, "crm_sf_jwt", method="get_customer_info", customer_id=kim)

    # then the 401 led to one new token and the lookup succeeded
    assert names(first) == names(second) == ["Minsu Kim"]
    assert server.tokens_issued == 2
    paths = ["token" if seen.path == server.token_path else "api" for seen in server.requests]
    assert paths == ["token", "api", "api", "token", "api"]


def test_a_dynamics_429_is_retried_after_the_retry_after_it_asked_for(dynamics):
    # given a contact, and Dataverse about to throttle
    kim = dynamics.add("contacts", lastname="Kim")
    dynamics.throttle_next(retry_after=120)
    message, _ = send_async(
        Integration.objects.get(integration_id="crm_dynamics"),
        {
            "method": "log_interaction",
            "customer_id": kim,
            "summary": "Refund",
            "started_at": "2024-05-01T09:30:00Z",
            "duration_seconds": 30,
        },
    )

    # when the worker tries it
    throttled = deliver(message.pk)

    # then it waits at least the 120 s Dataverse asked for
    assert (throttled.status, throttled.attempts) == (MessageStatus.PENDING, 1)
    assert "Dynamics 365 answered HTTP 429 0x80072322: Number of requests exceeded" in throttled.last_error
    attempt = throttled.delivery_attempts.get()
    assert throttled.next_attempt_at - attempt.finished_at >= timedelta(seconds=120)
    assert dynamics.rows["phonecalls"] == {}
    # and when that time has come, it is delivered once
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    delivered = deliver(message.pk)
    assert delivered.status == MessageStatus.DELIVERED
    assert len(dynamics.rows["phonecalls"]) == 1


def test_salesforce_request_limit_exceeded_is_retried_not_given_up(salesforce):
    kim = salesforce.add_contact(LastName="Kim")
    salesforce.throttle_next()
    message, _ = send_async(
        Integration.objects.get(integration_id="crm_salesforce"),
        {"method": "create_case", "subject": "Refund", "customer_id": kim},
    )

    throttled = deliver(message.pk)

    assert throttled.status == MessageStatus.PENDING
    assert "Salesforce answered HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded." in throttled.last_error


def test_a_crm_error_message_reaches_the_caller_as_a_502_without_any_secret(sender, salesforce, hubspot):
    # given a HubSpot gateway that repeats the request's credentials in its errors
    hubspot.reflect_credentials = True

    # when a ticket names a contact HubSpot does not have, and a Salesforce contact lacks its last name
    hubspot_error = send(sender, "crm_hubspot", method="create_case", subject="Refund", customer_id="999")
    salesforce_error = send(
        sender, "crm_salesforce", method="upsert_customer", email="new@example.com", first_name="Jia"
    )

    # then each caller reads the CRM's own message, and no credential
    assert hubspot_error.status_code == salesforce_error.status_code == 502
    hubspot_message = hubspot_error.json()["error"]["message"]
    assert "HubSpot answered HTTP 400: " in hubspot_message
    assert "Object 999 of type contact does not exist" in hubspot_message
    assert HUBSPOT_TOKEN not in hubspot_error.content.decode() and "Bearer ••••" in hubspot_message
    assert salesforce_error.json()["error"]["message"] == (
        "Permanent failure: Salesforce answered HTTP 400 REQUIRED_FIELD_MISSING: "
        "Required fields are missing: [LastName]"
    )
    for leaked in (SF_SECRET, *salesforce.valid_tokens):
        assert leaked not in salesforce_error.content.decode()


def test_bad_input_is_a_400_naming_the_field_and_an_unknown_method_lists_the_methods(sender, salesforce, hubspot):
    no_start = send(
        sender,
        "crm_salesforce",
        method="log_interaction",
        customer_id="003000000000001AAQ",
        summary="x",
        duration_seconds=1,
    )
    two_keys = send(sender, "crm_hubspot", method="get_customer_info", email="a@example.com", phone="+8210")
    not_an_id = send(sender, "crm_hubspot", method="get_customer_info", customer_id="003000000000001AAQ")
    unknown = send(sender, "crm_salesforce", method="send_sms", to="+821000000000", text="hi")

    assert no_start.status_code == two_keys.status_code == not_an_id.status_code == unknown.status_code == 400
    assert "payload.started_at" in no_start.json()["error"]["fields"]
    assert (
        two_keys.json()["error"]["fields"]["payload.customer_id"] == "Give exactly one of customer_id, phone or email."
    )
    assert not_an_id.json()["error"]["fields"]["payload.customer_id"] == "Enter a HubSpot record id (digits)."
    assert (
        "its methods are: create_case, get_customer_info, log_interaction, upsert_customer"
        in unknown.json()["error"]["message"]
    )
    assert salesforce.api_requests() == [] and hubspot.requests == []


def test_a_dynamics_integration_without_a_scope_is_refused_when_registered(dynamics):
    with pytest.raises(InvalidInput) as refused:
        register(
            "crm_dynamics_2",
            "dynamics",
            endpoint_url=dynamics.url,
            auth_type="oauth2_client_credentials",
            auth_config={"client_id": "dv-app", "client_secret": DV_SECRET, "token_url": dynamics.token_url},
        )

    assert f'"scope": "{dynamics.url}/.default"' in refused.value.fields["auth_config"]
    assert DV_SECRET not in str(refused.value.fields)


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
