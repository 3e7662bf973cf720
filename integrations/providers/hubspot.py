"""HubSpot through its CRM v3 objects API, with a private app's access token (auth_type bearer,
auth_config {"token": "pat-..."}).

endpoint_url defaults to https://api.hubapi.com; options: `ticket_pipeline` (default "0", the help
desk's default pipeline) and `ticket_pipeline_stage` (default "1", "New"). Contacts are found by id,
or with the search endpoint (email, or phone / mobilephone: two filter groups, which HubSpot ORs);
values travel as JSON, never spliced into a query. Calls, notes and tickets are created associated
with the contact (HubSpot-defined association types). HubSpot errors are
`{"status": "error", "message", "category", "correlationId"}`.
"""

from __future__ import annotations

import re
from datetime import UTC
from urllib.parse import urlencode

from integrations.providers import crm
from integrations.providers.base import CallContext, Result

DEFAULT_ENDPOINT = "https://api.hubapi.com"
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "phone", "mobilephone")
CONTACT_INPUT = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "phone": "phone",
    "mobile_phone": "mobilephone",
}
PRIORITY = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH"}
# HubSpot-defined association type ids (CRM v4 associations reference)
CALL_TO_CONTACT = 194
NOTE_TO_CONTACT = 202
TICKET_TO_CONTACT = 16


class HubSpotProvider(crm.CrmProvider):
    name = "hubspot"
    label = "HubSpot"
    auth_types = frozenset({"bearer"})
    needs_endpoint = False  # the public API's URL unless the integration names another
    customer_id_pattern = re.compile(r"[0-9]{1,20}")
    customer_id_form = "HubSpot record id (digits)"
    error_code_keys = ("category", "errorType")

    def do_get_customer_info(self, integration, data: dict, context: CallContext) -> Result:
        if data.get("customer_id"):
            query = urlencode({"properties": ",".join(CONTACT_PROPERTIES)})
            answer = self.send(integration, "GET", f"{_contacts(integration)}/{data['customer_id']}?{query}", context)
            self.field(answer, "id")
            return Result(http_status=answer.http_status, data=crm.customers([answer.data], _customer))
        if data.get("email"):
            groups = [[("email", data["email"])]]
        else:
            groups = [[("phone", data["phone"])], [("mobilephone", data["phone"])]]
        answer = self._search(integration, groups, crm.LOOKUP_LIMIT, context)
        return Result(http_status=answer.http_status, data=crm.customers(self.field(answer, "results"), _customer))

    def do_upsert_customer(self, integration, data: dict, context: CallContext) -> Result:
        properties = {CONTACT_INPUT[key]: value for key, value in data.items() if key in CONTACT_INPUT}
        customer_id = data.get("customer_id")
        if not customer_id:
            found = self.field(self._search(integration, [[("email", data["email"])]], 1, context), "results")
            customer_id = found[0]["id"] if found else None
        body = {"properties": properties}
        if customer_id:
            answer = self.send(integration, "PATCH", f"{_contacts(integration)}/{customer_id}", context, body=body)
            return Result(http_status=answer.http_status, data={"id": str(customer_id), "created": False})
        answer = self.send(integration, "POST", _contacts(integration), context, body=body)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "id"), "created": True})

    def do_log_interaction(self, integration, data: dict, context: CallContext) -> Result:
        timestamp = data["started_at"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if data["channel"] == "voice":
            kind, association = "calls", CALL_TO_CONTACT
            properties = {
                "hs_timestamp": timestamp,
                "hs_call_title": crm.interaction_title(data),
                "hs_call_body": crm.interaction_text(data),
                "hs_call_duration": str(data["duration_seconds"] * 1000),
                "hs_call_status": "COMPLETED",
            }
        else:
            kind, association = "notes", NOTE_TO_CONTACT
            properties = {
                "hs_timestamp": timestamp,
                "hs_note_body": f"{crm.interaction_title(data)}\n\n{crm.interaction_text(data)}",
            }
        return self._create(integration, kind, properties, data["customer_id"], association, context)

    def do_create_case(self, integration, data: dict, context: CallContext) -> Result:
        options = integration.options or {}
        properties = {
            "subject": data["subject"],
            "content": data["description"],
            "hs_pipeline": str(options.get("ticket_pipeline") or "0"),
            "hs_pipeline_stage": str(options.get("ticket_pipeline_stage") or "1"),
            "hs_ticket_priority": PRIORITY[data["priority"]],
        }
        return self._create(integration, "tickets", properties, data.get("customer_id"), TICKET_TO_CONTACT, context)

    def _create(self, integration, kind, properties, customer_id, association, context) -> Result:
        body: dict = {"properties": properties}
        if customer_id:
            body["associations"] = [
                {
                    "to": {"id": str(customer_id)},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association}],
                }
            ]
        answer = self.send(integration, "POST", f"{_base(integration)}/crm/v3/objects/{kind}", context, body=body)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "id")})

    def _search(self, integration, groups: list[list[tuple[str, str]]], limit: int, context: CallContext) -> Result:
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": name, "operator": "EQ", "value": value} for name, value in group]}
                for group in groups
            ],
            "properties": list(CONTACT_PROPERTIES),
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
            "limit": limit,
        }
        return self.send(integration, "POST", f"{_contacts(integration)}/search", context, body=body)


def _base(integration) -> str:
    return (integration.endpoint_url or DEFAULT_ENDPOINT).rstrip("/")


def _contacts(integration) -> str:
    return f"{_base(integration)}/crm/v3/objects/contacts"


def _customer(record: dict) -> dict:
    properties = record.get("properties") or {}
    first, last = properties.get("firstname"), properties.get("lastname")
    return {
        "id": record.get("id"),
        "name": " ".join(filter(None, (first, last))),
        "first_name": first,
        "last_name": last,
        "email": properties.get("email"),
        "phone": properties.get("phone"),
        "mobile_phone": properties.get("mobilephone"),
    }


PROVIDER = HubSpotProvider()
