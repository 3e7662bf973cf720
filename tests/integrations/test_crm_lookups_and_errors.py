"""The CRM providers (Salesforce, HubSpot, Dynamics 365) answering lookups, and what happens when a CRM
says no, each against a local server that speaks its REST API (tests/integrations/crm_servers.py):
lookups answer with the CRM's data, tokens are renewed once, rate limits are honoured, and a CRM's
error reaches the caller readable and without a secret. Writes and our events:
test_crm_writes_and_events.py."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from config.errors import InvalidInput
from integrations.models import DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from integrations.services import deliver, send_async
from tests.integrations.crm_helpers import DV_SECRET, HUBSPOT_TOKEN, SF_SECRET, names, register, send
from tests.integrations.crm_servers import SalesforceServer, hs_error, sf_error

pytestmark = pytest.mark.django_db


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
    assert "HubSpot answered HTTP 400 VALIDATION_ERROR: " in hubspot_message
    assert "Object 999 of type contact does not exist" in hubspot_message
    assert HUBSPOT_TOKEN not in hubspot_error.content.decode() and "Bearer ••••" in hubspot_message
    assert salesforce_error.json()["error"]["message"] == (
        "Permanent failure: Salesforce answered HTTP 400 REQUIRED_FIELD_MISSING: "
        "Required fields are missing: [LastName]"
    )
    for leaked in (SF_SECRET, *salesforce.valid_tokens):
        assert leaked not in salesforce_error.content.decode()


def test_a_fetched_access_token_echoed_in_an_error_is_in_no_answer_stored_error_or_log_line(
    sender, system_client, salesforce, caplog
):
    # given a Salesforce gateway that repeats the request's Authorization header (an OAuth2 token we
    # fetched, not a secret of the integration's config) in its error answers
    caplog.set_level(logging.DEBUG)
    salesforce.reflect_credentials = True

    # when a contact without a last name is created now, and once more by the worker
    now = send(sender, "crm_salesforce", method="upsert_customer", email="new@example.com", first_name="Jia")
    queued = send(
        sender, "crm_salesforce", "async", method="upsert_customer", email="new@example.com", first_name="Jia"
    )
    later = deliver(queued.json()["message_id"])

    # then the caller and the admin still read Salesforce's message, with the credential masked
    assert now.status_code == 502
    assert "REQUIRED_FIELD_MISSING: (sent Bearer ••••) Required fields are missing" in now.json()["error"]["message"]
    assert later.status == MessageStatus.FAILED
    detail = system_client.get(f"/api/v1/integrations/crm_salesforce/messages/{later.pk}")
    assert "(sent Bearer ••••)" in detail.json()["delivery_attempts"][0]["error"]
    # and the token itself is in no answer, stored text or log line
    stored = [
        *OutboundMessage.objects.values_list("last_error", flat=True),
        *DeliveryAttempt.objects.values_list("error", "excerpt"),
    ]
    logged = [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
    [token] = salesforce.valid_tokens
    assert salesforce.api_requests()[-1].headers["Authorization"] == f"Bearer {token}"
    for text in (now.content.decode(), detail.content.decode(), json.dumps(stored), *logged):
        assert token not in text


def test_a_long_hubspot_error_still_names_its_category_and_message(sender, hubspot):
    # given HubSpot refusing a write with a long validation message, its category after it (HubSpot's order)
    kim = hubspot.add_contact(email="minsu@example.com", lastname="Kim")
    problems = "; ".join(f'Property "custom_score_{n}" must be a number' for n in range(30))
    hubspot.answer_next(hs_error(400, "VALIDATION_ERROR", f"Property values were not valid: {problems}"))

    # when the contact is updated
    response = send(sender, "crm_hubspot", method="upsert_customer", customer_id=kim, first_name="Minsu")

    # then the caller reads HubSpot's category and the start of its message, not a cut JSON excerpt
    assert response.status_code == 502
    assert response.json()["error"]["message"].startswith(
        'Permanent failure: HubSpot answered HTTP 400 VALIDATION_ERROR: Property values were not valid: Property "'
    )


def test_a_salesforce_limit_with_a_long_message_is_still_retried(salesforce):
    # given Salesforce's API limit reached, said with a long message before its errorCode (Salesforce's order)
    kim = salesforce.add_contact(LastName="Kim")
    usage = ", ".join(f"{name}: 100000/100000" for name in ("TotalRequests", "DailyApiRequests", "HourlyODataCallout"))
    salesforce.answer_next(sf_error(403, "REQUEST_LIMIT_EXCEEDED", f"Limits exceeded for this org ({usage}) " * 3))
    message, _ = send_async(
        Integration.objects.get(integration_id="crm_salesforce"),
        {"method": "create_case", "subject": "Refund", "customer_id": kim},
    )

    # when the worker tries it
    throttled = deliver(message.pk)

    # then the errorCode decided: it waits for another try instead of failing for good
    assert throttled.status == MessageStatus.PENDING
    assert throttled.last_error.startswith("Salesforce answered HTTP 403 REQUEST_LIMIT_EXCEEDED: Limits exceeded")


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
