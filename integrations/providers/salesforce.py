"""Salesforce through its REST API (sObjects and SOQL queries), authenticated with OAuth2 client
credentials or the JWT bearer flow (integrations.auth).

endpoint_url is the org's instance URL (https://<my-domain>.my.salesforce.com); options:
`api_version` (default v61.0), `case_origin` (a Case Origin picklist value, e.g. "Phone"; left to the
org's default when absent). A contact is found by Id, or by Email / Phone / MobilePhone in SOQL, where
every value is a quoted, escaped string literal. Salesforce errors are a JSON list
`[{"message", "errorCode", "fields"}]`; REQUEST_LIMIT_EXCEEDED (the org's API limit, a 403) and
UNABLE_TO_LOCK_ROW are worth another try later, other 4xx are not.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from integrations.providers import crm
from integrations.providers.base import CallContext, Result

DEFAULT_API_VERSION = "v61.0"
API_VERSION = re.compile(r"^v\d{2,3}\.0$")
CONTACT_FIELDS = ("Id", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "AccountId")
CONTACT_INPUT = {
    "first_name": "FirstName",
    "last_name": "LastName",
    "email": "Email",
    "phone": "Phone",
    "mobile_phone": "MobilePhone",
}
PRIORITY = {"low": "Low", "medium": "Medium", "high": "High"}
TASK_SUBTYPE = {"voice": "Call", "email": "Email", "chat": "Task", "sms": "Task"}
RETRYABLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW"})
_SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def soql_string(value: str) -> str:
    """A SOQL string literal: quoted, with every character SOQL reads as syntax escaped."""
    return "'" + "".join(_SOQL_ESCAPES.get(char, char) for char in value) + "'"


class SalesforceProvider(crm.CrmProvider):
    name = "salesforce"
    label = "Salesforce"
    auth_types = frozenset({"oauth2_client_credentials", "oauth2_jwt_bearer"})
    customer_id_pattern = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
    customer_id_form = "Salesforce record Id (15 or 18 letters and digits)"

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        version = (integration.options or {}).get("api_version") if isinstance(integration.options, dict) else None
        if version is not None and not (isinstance(version, str) and API_VERSION.match(version)):
            errors["options"] = f'api_version must look like "{DEFAULT_API_VERSION}".'
        return errors

    def is_retryable_code(self, code: str | None) -> bool:
        return code in RETRYABLE_CODES

    def do_get_customer_info(self, integration, data: dict, context: CallContext) -> Result:
        if data.get("customer_id"):
            fields = urlencode({"fields": ",".join(CONTACT_FIELDS)})
            answer = self.send(
                integration, "GET", f"{_base(integration)}/sobjects/Contact/{data['customer_id']}?{fields}", context
            )
            self.field(answer, "Id")  # a contact, not some other answer
            return Result(http_status=answer.http_status, data=crm.customers([answer.data], _customer))
        if data.get("email"):
            where = f"Email = {soql_string(data['email'])}"
        else:
            phone = soql_string(data["phone"])
            where = f"Phone = {phone} OR MobilePhone = {phone}"
        answer = self._query(integration, where, crm.LOOKUP_LIMIT, context)
        return Result(http_status=answer.http_status, data=crm.customers(self.field(answer, "records"), _customer))

    def do_upsert_customer(self, integration, data: dict, context: CallContext) -> Result:
        fields = {CONTACT_INPUT[key]: value for key, value in data.items() if key in CONTACT_INPUT}
        customer_id = data.get("customer_id")
        if not customer_id:
            found = self._query(integration, f"Email = {soql_string(data['email'])}", 1, context)
            records = self.field(found, "records")
            customer_id = records[0]["Id"] if records else None
        if customer_id:
            answer = self.send(
                integration, "PATCH", f"{_base(integration)}/sobjects/Contact/{customer_id}", context, body=fields
            )
            return Result(http_status=answer.http_status, data={"id": customer_id, "created": False})
        answer = self.send(integration, "POST", f"{_base(integration)}/sobjects/Contact", context, body=fields)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "id"), "created": True})

    def do_log_interaction(self, integration, data: dict, context: CallContext) -> Result:
        task = {
            "WhoId": data["customer_id"],
            "Subject": crm.interaction_title(data)[:255],
            "Description": crm.interaction_text(data),
            "ActivityDate": data["started_at"].date().isoformat(),
            "Status": "Completed",
            "TaskSubtype": TASK_SUBTYPE[data["channel"]],
        }
        if data["channel"] == "voice":
            task["CallDurationInSeconds"] = data["duration_seconds"]
        return self._create(integration, "Task", task, context)

    def do_create_case(self, integration, data: dict, context: CallContext) -> Result:
        case = {"Subject": data["subject"], "Description": data["description"], "Priority": PRIORITY[data["priority"]]}
        if data.get("customer_id"):
            case["ContactId"] = data["customer_id"]
        origin = (integration.options or {}).get("case_origin")
        if origin:
            case["Origin"] = str(origin)
        return self._create(integration, "Case", case, context)

    def _create(self, integration, sobject: str, fields: dict, context: CallContext) -> Result:
        answer = self.send(integration, "POST", f"{_base(integration)}/sobjects/{sobject}", context, body=fields)
        return Result(http_status=answer.http_status, data={"id": self.field(answer, "id")})

    def _query(self, integration, where: str, limit: int, context: CallContext) -> Result:
        """`where` is built here from soql_string literals only, never from a caller's text as is."""
        columns = ", ".join(CONTACT_FIELDS)
        soql = f"SELECT {columns} FROM Contact WHERE {where} ORDER BY LastModifiedDate DESC LIMIT {limit}"  # noqa: S608
        return self.send(integration, "GET", f"{_base(integration)}/query?{urlencode({'q': soql})}", context)


def _base(integration) -> str:
    version = (integration.options or {}).get("api_version") or DEFAULT_API_VERSION
    return f"{integration.endpoint_url.rstrip('/')}/services/data/{version}"


def _customer(record: dict) -> dict:
    return {
        "id": record.get("Id"),
        "name": record.get("Name") or " ".join(filter(None, (record.get("FirstName"), record.get("LastName")))),
        "first_name": record.get("FirstName"),
        "last_name": record.get("LastName"),
        "email": record.get("Email"),
        "phone": record.get("Phone"),
        "mobile_phone": record.get("MobilePhone"),
    }


PROVIDER = SalesforceProvider()
