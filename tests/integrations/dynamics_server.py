"""A local stand-in for Microsoft Dynamics 365's Dataverse Web API (OData v4 below /api/data/v9.2/)
and the Microsoft identity platform's client-credentials token endpoint, on 127.0.0.1 (see
crm_servers.py for the knobs every CRM server has). Errors are `{"error": {"code", "message"}}`; a
401 is empty with WWW-Authenticate; a throttled request gets a 429 with Retry-After.
"""

from __future__ import annotations

import re
import uuid

from tests.integrations.crm_servers import Answer, CRMServer, Seen, answer, matches, parse_condition

DV_LITERAL = re.compile(r"'(?:[^']|'')*'")
DV_COLUMNS = {
    "contacts": {"firstname", "lastname", "emailaddress1", "telephone1", "mobilephone"},
    "phonecalls": {"subject", "description", "actualstart", "actualend", "actualdurationminutes"},
    "tasks": {"subject", "description", "actualstart", "actualend", "actualdurationminutes"},
    "incidents": {"title", "description", "prioritycode"},
}
DV_KEY = {"contacts": "contactid", "phonecalls": "activityid", "tasks": "activityid", "incidents": "incidentid"}
DV_BINDS = {
    "phonecalls": {"regardingobjectid_contact@odata.bind": "contacts"},
    "tasks": {"regardingobjectid_contact@odata.bind": "contacts"},
    "incidents": {"customerid_contact@odata.bind": "contacts", "customerid_account@odata.bind": "accounts"},
}


def dv_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return answer(status, {"error": {"code": code, "message": message}}, headers)


class DynamicsServer(CRMServer):
    tenant = "00000000-0000-0000-0000-0000000000aa"

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.token_path = f"/{self.tenant}/oauth2/v2.0/token"
        self.rows: dict[str, dict[str, dict]] = {name: {} for name in DV_COLUMNS}
        self.rows["accounts"] = {}

    @property
    def token_url(self) -> str:
        return f"{self.url}{self.token_path}"

    def add(self, entity_set: str, **columns) -> str:
        row_id = str(uuid.uuid4())
        self.rows[entity_set][row_id] = {DV_KEY.get(entity_set, "accountid"): row_id, **columns}
        return row_id

    def token(self, form: dict) -> Answer:
        if form.get("grant_type") != "client_credentials":
            return answer(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return answer(
                401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
            )
        if form.get("scope") != f"{self.url}/.default":
            return answer(400, {"error": "invalid_scope", "error_description": "AADSTS1002012: scope is not valid."})
        return answer(
            200,
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": self.issue_token()},
        )

    def unauthorized(self) -> Answer:
        return 401, {"WWW-Authenticate": f'Bearer authorization_uri="{self.url}/{self.tenant}/oauth2/authorize"'}, b""

    def rate_limited(self, retry_after: int) -> Answer:
        message = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        return dv_error(429, "0x80072322", message, {"Retry-After": str(retry_after)})

    def route(self, seen: Seen) -> Answer:
        match = re.fullmatch(
            r"/api/data/v9\.2/(contacts|phonecalls|tasks|incidents)(?:\(([0-9a-f-]{36})\))?", seen.path
        )
        if not match:
            return dv_error(404, "0x8006088a", f"Resource not found for the segment '{seen.path.rsplit('/', 1)[-1]}'.")
        entity_set, row_id = match.groups()
        representation = "return=representation" in seen.headers.get("Prefer", "")
        if row_id is None and seen.method == "GET":
            return self.find(entity_set, seen.query)
        if row_id is None and seen.method == "POST":
            return self.write(entity_set, None, seen.json(), representation)
        if seen.method == "GET":
            if row_id not in self.rows[entity_set]:
                return self._missing(entity_set, row_id)
            return answer(200, self._shown(entity_set, self.rows[entity_set][row_id], seen.query.get("$select")))
        if seen.method == "PATCH":
            if row_id not in self.rows[entity_set] and seen.headers.get("If-Match") == "*":
                return self._missing(entity_set, row_id)
            return self.write(entity_set, row_id, seen.json(), representation)
        return dv_error(405, "0x80060888", "The requested resource does not support http method.")

    def _missing(self, entity_set: str, row_id: str) -> Answer:
        return dv_error(404, "0x80040217", f"{entity_set.rstrip('s')} With Id = {row_id} Does Not Exist")

    def _shown(self, entity_set: str, row: dict, select: str | None) -> dict:
        context = {"@odata.context": f"{self.url}/api/data/v9.2/$metadata#{entity_set}/$entity"}
        names = [name for name in (select or "").split(",") if name]
        return {**context, **({name: row.get(name) for name in names} if names else row)}

    def write(self, entity_set: str, row_id: str | None, body: dict, representation: bool) -> Answer:
        row = {}
        for name, value in body.items():
            if name in DV_BINDS.get(entity_set, {}):
                target = DV_BINDS[entity_set][name]
                bound = re.fullmatch(rf"/{target}\(([0-9a-f-]{{36}})\)", str(value))
                if not bound or bound[1] not in self.rows[target]:
                    return dv_error(404, "0x80040217", f"{target.rstrip('s')} With Id = {value} Does Not Exist")
                row[name.split("@")[0]] = bound[1]
            elif name in DV_COLUMNS[entity_set]:
                row[name] = value
            else:
                message = (
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{entity_set.rstrip('s')}'."
                )
                return dv_error(400, "0x80060888", message)
        if entity_set == "incidents" and row_id is None:
            if not row.get("title"):
                return dv_error(400, "0x80040203", "title: Required field is missing.")
            if "customerid_contact" not in row and "customerid_account" not in row:
                return dv_error(400, "0x80040203", "You should specify a parent contact or account.")
            if row.get("prioritycode") not in (1, 2, 3):
                return dv_error(
                    400, "0x8004431a", "A validation error occurred. The value of 'prioritycode' is invalid."
                )
            row["ticketnumber"] = f"CAS-{self.next_id():05d}-Q1W2E3"
        if "actualdurationminutes" in row and not isinstance(row["actualdurationminutes"], int):
            return dv_error(400, "0x80060888", "Cannot convert the literal to the expected type 'Edm.Int32'.")
        created = row_id is None or row_id not in self.rows[entity_set]
        row_id = row_id or str(uuid.uuid4())
        stored = self.rows[entity_set].setdefault(row_id, {DV_KEY[entity_set]: row_id})
        stored.update(row)
        entity_id = {"OData-EntityId": f"{self.url}/api/data/v9.2/{entity_set}({row_id})"}
        if representation:
            return answer(201 if created else 200, self._shown(entity_set, stored, None), entity_id)
        return 204, entity_id, b""

    def find(self, entity_set: str, query: dict) -> Answer:
        conditions = []
        if query.get("$filter"):
            try:
                conditions = parse_condition(
                    query["$filter"], DV_LITERAL, lambda text: text.replace("''", "'"), {"eq": "eq", "ne": "ne"}, "or"
                )
            except ValueError as exc:
                return dv_error(400, "0x80060888", f"Syntax error in '$filter': {exc}")
        top = int(query.get("$top", "5000"))
        rows = [row for row in self.rows[entity_set].values() if not conditions or matches(row, conditions)]
        shown = [self._shown(entity_set, row, query.get("$select")) for row in rows[:top]]
        for row in shown:
            row.pop("@odata.context")
        context = f"{self.url}/api/data/v9.2/$metadata#{entity_set}"
        return answer(200, {"@odata.context": context, "value": shown})
