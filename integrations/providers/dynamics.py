"""Microsoft Dynamics 365 (Dataverse Web API, OData v4), authenticated with OAuth2 client credentials
against Microsoft Entra ID: auth_config {token_url: https://login.microsoftonline.com/<tenant>/oauth2/
v2.0/token, client_id, client_secret, scope: "<org URL>/.default"}.

endpoint_url is the org's URL (https://<org>.crm.dynamics.com); requests go below /api/data/v9.2/.
Contacts are found by id, or with $filter on emailaddress1 / telephone1 / mobilephone, every value an
OData string literal with its quotes doubled. A PATCH by id carries `If-Match: *` (Dataverse would
otherwise create a missing contact under that id), and writes ask `Prefer: return=representation` to
read the new record's id. A case (incident) must have a customer: the given contact, else the
account in options `case_account_id`; a case with neither is refused before anything is sent.
Dataverse errors are `{"error": {"code", "message"}}`; a 429 carries Retry-After.
"""

from __future__ import annotations

import math
import re
from datetime import UTC
from urllib.parse import quote

from integrations.providers import crm
from integrations.providers.base import CallContext, ProviderError, Result

API_PATH = "/api/data/v9.2"
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONTACT_COLUMNS = ("contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1", "mobilephone")
CONTACT_INPUT = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "emailaddress1",
    "phone": "telephone1",
    "mobile_phone": "mobilephone",
}
PRIORITY_CODE = {"high": 1, "medium": 2, "low": 3}  # incident.prioritycode: High, Normal, Low
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}
WRITE_HEADERS = {**ODATA_HEADERS, "Prefer": "return=representation"}


def odata_string(value: str) -> str:
    """An OData string literal: quoted, a quote inside doubled (OData ABNF, SQUOTE-in-string)."""
    return "'" + value.replace("'", "''") + "'"


class DynamicsProvider(crm.CrmProvider):
    name = "dynamics"
    label = "Dynamics 365"
    auth_types = frozenset({"oauth2_client_credentials"})
    customer_id_pattern = GUID
    customer_id_form = "Dataverse record id (a GUID, e.g. 00000000-0000-0000-0000-000000000000)"
    error_code_keys = ("code",)

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        try:
            config = integration.auth_config
        except Exception:  # a config that does not open: the model's own check names it
            config = {}
        if (
            integration.auth_type == "oauth2_client_credentials"
            and not config.get("scope")
            and "auth_config" not in errors
        ):
            errors["auth_config"] = (
                f'Dataverse needs auth_config "scope": "{integration.endpoint_url.rstrip("/")}/.default" '
                "(the org URL followed by /.default)."
            )
        account = (integration.options or {}).get("case_account_id") if isinstance(integration.options, dict) else None
        if account is not None and not (isinstance(account, str) and GUID.fullmatch(account)):
            errors["options"] = "case_account_id must be an account's GUID."
        return errors

    def do_get_customer_info(self, integration, data: dict, context: CallContext) -> Result:
        select = "$select=" + ",".join(CONTACT_COLUMNS)
        if data.get("customer_id"):
            answer = self._send(integration, "GET", f"contacts({data['customer_id']})?{select}", context)
            self.field(answer, "contactid")
            return Result(http_status=answer.http_status, data=crm.customers([answer.data], _customer))
        if data.get("email"):
            where = f"emailaddress1 eq {odata_string(data['email'])}"
        else:
            phone = odata_string(data["phone"])
            where = f"telephone1 eq {phone} or mobilephone eq {phone}"
        answer = self._find(integration, where, crm.LOOKUP_LIMIT, context)
        return Result(http_status=answer.http_status, data=crm.customers(self.field(answer, "value"), _customer))

    def do_upsert_customer(self, integration, data: dict, context: CallContext) -> Result:
        columns = {CONTACT_INPUT[key]: value for key, value in data.items() if key in CONTACT_INPUT}
        customer_id = data.get("customer_id")
        if not customer_id:
            found = self.field(
                self._find(integration, f"emailaddress1 eq {odata_string(data['email'])}", 1, context), "value"
            )
            customer_id = found[0]["contactid"] if found else None
        if customer_id:
            headers = {**WRITE_HEADERS, "If-Match": "*"}  # update only: never create under a given id
            answer = self._send(
                integration, "PATCH", f"contacts({customer_id})", context, body=columns, headers=headers
            )
            return Result(http_status=answer.http_status, data={"id": customer_id, "created": False})
        answer = self._send(integration, "POST", "contacts", context, body=columns)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "contactid"), "created": True})

    def do_log_interaction(self, integration, data: dict, context: CallContext) -> Result:
        activity = {
            "subject": crm.interaction_title(data),
            "description": crm.interaction_text(data),
            "actualstart": _utc(data["started_at"]),
            "actualend": _utc(crm.ended_at(data)),
            "actualdurationminutes": math.ceil(data["duration_seconds"] / 60),
            "regardingobjectid_contact@odata.bind": f"/contacts({data['customer_id']})",
        }
        entity_set = "phonecalls" if data["channel"] == "voice" else "tasks"
        answer = self._send(integration, "POST", entity_set, context, body=activity)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "activityid")})

    def do_create_case(self, integration, data: dict, context: CallContext) -> Result:
        case = {
            "title": data["subject"],
            "description": data["description"],
            "prioritycode": PRIORITY_CODE[data["priority"]],
        }
        account = (integration.options or {}).get("case_account_id")
        if data.get("customer_id"):
            case["customerid_contact@odata.bind"] = f"/contacts({data['customer_id']})"
        elif account:
            case["customerid_account@odata.bind"] = f"/accounts({account})"
        else:
            raise ProviderError(
                "Not sent: a Dynamics 365 case needs a customer. Give customer_id (a contact), or set the "
                "integration's options case_account_id to the account that owns cases without one.",
                permanent=True,
            )
        answer = self._send(integration, "POST", "incidents", context, body=case)
        result = {"id": self.field(answer, "incidentid")}
        if answer.data.get("ticketnumber"):
            result["ticket_number"] = answer.data["ticketnumber"]
        return Result(http_status=answer.http_status, data=result)

    def _find(self, integration, where: str, top: int, context: CallContext) -> Result:
        query = "&".join(
            (
                "$select=" + ",".join(CONTACT_COLUMNS),
                "$filter=" + quote(where, safe=""),
                "$orderby=" + quote("modifiedon desc", safe=""),
                f"$top={top}",
            )
        )
        return self._send(integration, "GET", f"contacts?{query}", context)

    def _send(self, integration, method: str, path: str, context: CallContext, *, body=None, headers=None) -> Result:
        headers = headers or (WRITE_HEADERS if body is not None else ODATA_HEADERS)
        url = f"{integration.endpoint_url.rstrip('/')}{API_PATH}/{path}"
        return self.send(integration, method, url, context, body=body, headers=headers)


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _customer(record: dict) -> dict:
    return {
        "id": record.get("contactid"),
        "name": record.get("fullname") or " ".join(filter(None, (record.get("firstname"), record.get("lastname")))),
        "first_name": record.get("firstname"),
        "last_name": record.get("lastname"),
        "email": record.get("emailaddress1"),
        "phone": record.get("telephone1"),
        "mobile_phone": record.get("mobilephone"),
    }


PROVIDER = DynamicsProvider()
