"""Local stand-ins for Salesforce and HubSpot (Dynamics 365: dynamics_server.py), each with its token
endpoint, speaking the documented REST API on 127.0.0.1: they check the bearer token, the path and the
body, keep contacts and records in memory, and answer in the CRM's own shapes, errors included
(Salesforce's `[{"message","errorCode","fields"}]`, HubSpot's `{"status":"error","message","category"}`,
Dataverse's `{"error":{"code","message"}}`). They record every request and know nothing of our code.

Knobs: `expire_tokens()` (every token issued so far is refused with the CRM's 401), `throttle_next()`
(the CRM's rate-limit answer once: Dataverse a 429 with Retry-After, HubSpot a 429, Salesforce its
403 REQUEST_LIMIT_EXCEEDED), `answer_next(answer)` (that answer once, e.g. an error with a long
message: `sf_error`, `hs_error`, `dv_error` build the CRM's shapes), `reflect_credentials` (error
texts repeat the Authorization header, as a careless gateway would).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


def answer(status: int, value=None, headers: dict[str, str] | None = None) -> Answer:
    body = b"" if value is None else json.dumps(value).encode()
    kind = {"Content-Type": "application/json; charset=utf-8"} if value is not None else {}
    return status, {**kind, **(headers or {})}, body


class CRMServer:
    token_path = ""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.reflect_credentials = False
        self._forced: deque[Answer] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def api_requests(self) -> list[Seen]:
        return [seen for seen in self.requests if seen.path != self.token_path]

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def throttle_next(self, retry_after: int = 30) -> None:
        self.answer_next(self.rate_limited(retry_after))

    def answer_next(self, forced: Answer) -> None:
        """The next authenticated request gets this answer, whatever it asked."""
        self._forced.append(forced)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def respond(self, seen: Seen) -> Answer:
        if self.token_path and seen.path == self.token_path and seen.method == "POST":
            return self.token(seen.form())
        authorization = seen.headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or not self.accepts(authorization[7:]):
            return self.unauthorized()
        if self._forced:
            status, headers, body = self._forced.popleft()
        else:
            status, headers, body = self.route(seen)
        if status >= 400 and self.reflect_credentials:
            body = body.replace(b'"message": "', f'"message": "(sent {authorization}) '.encode(), 1)
        return status, headers, body

    def issue_token(self) -> str:
        token = f"tok-{uuid.uuid4().hex}"
        self.valid_tokens.add(token)
        self.tokens_issued += 1
        return token

    def accepts(self, token: str) -> bool:
        return token in self.valid_tokens

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(server: CRMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen = Seen(self.command, unquote(parts.path), query, dict(self.headers.items()), body)
            server.requests.append(seen)
            status, headers, payload = server.respond(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _any

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler


class Literal(str):
    """A string literal read from a query (so a field name and a quoted value never mix)."""


def parse_condition(text: str, literal: re.Pattern, unescape, operators: dict[str, str], joiner: str):
    """`field op 'literal' (joiner field op 'literal')*` → [(field, op, value)], or ValueError where
    the text stops making sense (an unescaped quote in a value ends up here)."""
    token = re.compile(rf"\s*(?:(?P<lit>{literal.pattern})|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>!=|=))")
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = token.match(text, position)
        if not match:
            raise ValueError(f"unexpected text at position {position}")
        position = match.end()
        tokens.append(Literal(unescape(match["lit"][1:-1])) if match["lit"] else (match["word"] or match["op"]))
    conditions = []
    for index in range(0, len(tokens), 4):
        chunk = tokens[index : index + 4]
        field, op, value = [*chunk, None, None, None][:3]
        valid_field = isinstance(field, str) and not isinstance(field, Literal)
        if not valid_field or op not in operators or not isinstance(value, Literal):
            raise ValueError(f"expected <field> {'|'.join(operators)} '<value>' at token {index}")
        if len(chunk) == 4 and (isinstance(chunk[3], Literal) or chunk[3].lower() != joiner):
            raise ValueError(f"expected {joiner.upper()} at token {index + 3}")
        if len(chunk) == 4 and index + 4 >= len(tokens):
            raise ValueError("condition missing after " + joiner.upper())
        conditions.append((field, operators[op], str(value)))
    return conditions


def matches(record: dict, conditions, key=lambda record, field: record.get(field)) -> bool:
    """Conditions joined by OR."""
    return any((key(record, field) == value) == (op == "eq") for field, op, value in conditions)


# --- Salesforce ----------------------------------------------------------------------------------

SF_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
SF_CONTACT = {"FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountId"}
SF_TASK = {"WhoId", "Subject", "Description", "ActivityDate", "Status", "TaskSubtype", "CallDurationInSeconds"}
SF_CASE = {"Subject", "Description", "Priority", "ContactId", "Origin", "Status"}
SF_PREFIX = {"Contact": "003", "Task": "00T", "Case": "500"}


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> Answer:
    return answer(status, [{"message": message, "errorCode": code, "fields": fields or []}])


class SalesforceServer(CRMServer):
    token_path = "/services/oauth2/token"
    api_version = "v61.0"

    def __init__(self, *, client_id: str, client_secret: str = "", public_key=None, username: str = "") -> None:
        super().__init__()
        self.client_id, self.client_secret, self.public_key, self.username = (
            client_id,
            client_secret,
            public_key,
            username,
        )
        self.records: dict[str, dict[str, dict]] = {"Contact": {}, "Task": {}, "Case": {}}

    def add_contact(self, **fields) -> str:
        return self._insert("Contact", fields)

    def _insert(self, sobject: str, fields: dict) -> str:
        record_id = f"{SF_PREFIX[sobject]}{self.next_id():012d}AAQ"
        self.records[sobject][record_id] = {"Id": record_id, **fields}
        return record_id

    def token(self, form: dict) -> Answer:
        if form.get("grant_type") == "client_credentials":
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return answer(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        elif form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self.public_key,
                    algorithms=["RS256"],
                    audience="https://login.salesforce.com",
                )
            except jwt.PyJWTError:
                return answer(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
            if claims.get("exp", 0) > time.time() + 180:  # Salesforce: "exp ... within 3 minutes"
                return answer(400, {"error": "invalid_grant", "error_description": "assertion expires too late"})
            if (claims.get("iss"), claims.get("sub")) != (self.client_id, self.username):
                return answer(
                    400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
                )
        else:
            return answer(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        token = self.issue_token()
        return answer(
            200,
            {
                "access_token": token,
                "instance_url": self.url,
                "id": f"{self.url}/id/00D000000000001AAA/005000000000001AAA",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "c2lnbmF0dXJl",
            },
        )

    def unauthorized(self) -> Answer:
        return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def rate_limited(self, retry_after: int) -> Answer:
        return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def route(self, seen: Seen) -> Answer:
        base = f"/services/data/{self.api_version}"
        if not seen.path.startswith(base + "/"):
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        path = seen.path[len(base) :]
        if path == "/query" and seen.method == "GET":
            return self.query(seen.query.get("q", ""))
        match = re.fullmatch(r"/sobjects/(Contact|Task|Case)(?:/([A-Za-z0-9]+))?", path)
        if not match:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        sobject, record_id = match.groups()
        if record_id is None and seen.method == "POST":
            return self.create(sobject, seen.json())
        record = self.records[sobject].get(record_id or "")
        if record is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if seen.method == "GET":
            wanted = [name for name in seen.query.get("fields", "").split(",") if name] or list(record)
            return answer(200, {"attributes": {"type": sobject}, **{name: record.get(name) for name in wanted}})
        if seen.method == "PATCH":
            problem = self._check(sobject, seen.json())
            if problem:
                return problem
            record.update(seen.json())
            return 204, {}, b""
        return sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{seen.method}' not allowed.")

    def _check(self, sobject: str, fields: dict) -> Answer | None:
        allowed = {"Contact": SF_CONTACT, "Task": SF_TASK, "Case": SF_CASE}[sobject]
        for name in fields:
            if name not in allowed:
                return sf_error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
        return None

    def create(self, sobject: str, fields: dict) -> Answer:
        problem = self._check(sobject, fields)
        if problem:
            return problem
        if sobject == "Contact" and not fields.get("LastName"):
            return sf_error(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"])
        if sobject == "Task":
            if fields.get("WhoId") not in self.records["Contact"]:
                return sf_error(400, "INVALID_CROSS_REFERENCE_KEY", "Name ID: id value of incorrect type", ["WhoId"])
            if fields.get("TaskSubtype") not in ("Task", "Email", "Call"):
                return sf_error(
                    400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Task Subtype: bad value", ["TaskSubtype"]
                )
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(fields.get("ActivityDate", ""))):
                return sf_error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date", ["ActivityDate"])
        if sobject == "Case":
            if fields.get("Priority") not in ("High", "Medium", "Low"):
                return sf_error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Priority: bad value", ["Priority"])
            if fields.get("ContactId") and fields["ContactId"] not in self.records["Contact"]:
                return sf_error(400, "INVALID_CROSS_REFERENCE_KEY", "Contact ID: id value of incorrect type")
        return answer(201, {"id": self._insert(sobject, fields), "success": True, "errors": []})

    def query(self, soql: str) -> Answer:
        shape = re.fullmatch(
            r"SELECT (?P<fields>[\w, ]+) FROM Contact WHERE (?P<where>.+?) "
            r"ORDER BY LastModifiedDate DESC LIMIT (?P<n>\d+)",
            soql,
            re.DOTALL,
        )
        if not shape:
            return sf_error(400, "MALFORMED_QUERY", "unexpected token in query")
        unescape = lambda text: re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), text)  # noqa: E731
        try:
            conditions = parse_condition(shape["where"], SF_LITERAL, unescape, {"=": "eq", "!=": "ne"}, "or")
        except ValueError as exc:
            return sf_error(400, "MALFORMED_QUERY", f"unexpected token: {exc}")
        fields = [name.strip() for name in shape["fields"].split(",")]
        found = [record for record in self.records["Contact"].values() if matches(record, conditions)]
        found = found[: int(shape["n"])]
        records = [
            {"attributes": {"type": "Contact"}, **{name: record.get(name) for name in fields}} for record in found
        ]
        return answer(200, {"totalSize": len(records), "done": True, "records": records})


# --- HubSpot -------------------------------------------------------------------------------------

HS_ASSOCIATION = {"calls": 194, "notes": 202, "tickets": 16}
HS_REQUIRED = {"calls": ("hs_timestamp",), "notes": ("hs_timestamp",), "tickets": ("subject", "hs_pipeline_stage")}
HS_PROPERTIES = {
    "contacts": {"firstname", "lastname", "email", "phone", "mobilephone"},
    "calls": {"hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_duration", "hs_call_status"},
    "notes": {"hs_timestamp", "hs_note_body"},
    "tickets": {"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"},
}


def hs_error(status: int, category: str, message: str) -> Answer:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return answer(status, body)


class HubSpotServer(CRMServer):
    def __init__(self, *, token: str) -> None:
        super().__init__()
        self.token_value = token
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in HS_PROPERTIES}
        self.associations: list[tuple[str, str, str, int]] = []  # (kind, id, contact id, type id)

    def accepts(self, token: str) -> bool:
        return token == self.token_value

    def add_contact(self, **properties) -> str:
        return self._insert("contacts", properties)

    def _insert(self, kind: str, properties: dict) -> str:
        object_id = str(1000 + self.next_id())
        self.objects[kind][object_id] = dict(properties)
        return object_id

    def _object(self, kind: str, object_id: str, wanted=None) -> dict:
        properties = self.objects[kind][object_id]
        shown = {name: properties.get(name) for name in wanted} if wanted else dict(properties)
        stamp = "2024-05-01T09:00:00.000Z"
        shown.update({"hs_object_id": object_id, "createdate": stamp, "lastmodifieddate": stamp})
        return {"id": object_id, "properties": shown, "createdAt": stamp, "updatedAt": stamp, "archived": False}

    def unauthorized(self) -> Answer:
        return hs_error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )

    def rate_limited(self, retry_after: int) -> Answer:
        status, headers, body = hs_error(429, "RATE_LIMITS", "You have reached your secondly limit.")
        return status, headers, body

    def route(self, seen: Seen) -> Answer:
        match = re.fullmatch(r"/crm/v3/objects/(contacts|calls|notes|tickets)(?:/(search|[0-9]+))?", seen.path)
        if not match:
            return hs_error(404, "OBJECT_NOT_FOUND", "Resource not found")
        kind, tail = match.groups()
        if tail == "search" and seen.method == "POST" and kind == "contacts":
            return self.search(seen.json())
        if tail is None and seen.method == "POST":
            return self.create(kind, seen.json())
        if tail not in self.objects[kind]:
            return hs_error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
        if seen.method == "GET":
            wanted = [name for name in seen.query.get("properties", "").split(",") if name]
            return answer(200, self._object(kind, tail, wanted))
        if seen.method == "PATCH":
            problem = self._check(kind, seen.json().get("properties"))
            if problem:
                return problem
            self.objects[kind][tail].update(seen.json()["properties"])
            return answer(200, self._object(kind, tail))
        return hs_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")

    def _check(self, kind: str, properties) -> Answer | None:
        if not isinstance(properties, dict):
            return hs_error(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
        unknown = [name for name in properties if name not in HS_PROPERTIES[kind]]
        if unknown:
            detail = [
                {"isValid": False, "message": f'Property "{name}" does not exist', "name": name} for name in unknown
            ]
            return hs_error(400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(detail)}")
        if any(not isinstance(value, str) for value in properties.values()):
            return hs_error(400, "VALIDATION_ERROR", "Property values must be strings")
        return None

    def create(self, kind: str, body: dict) -> Answer:
        properties = body.get("properties")
        problem = self._check(kind, properties)
        if problem:
            return problem
        missing = [name for name in HS_REQUIRED.get(kind, ()) if not properties.get(name)]
        if missing:
            return hs_error(400, "VALIDATION_ERROR", f"Required properties are missing: {', '.join(missing)}")
        if kind == "contacts" and properties.get("email"):
            for existing_id, existing in self.objects["contacts"].items():
                if existing.get("email") == properties["email"]:
                    return hs_error(409, "CONFLICT", f"Contact already exists. Existing ID: {existing_id}")
        links = []
        for association in body.get("associations") or []:
            to_id = str((association.get("to") or {}).get("id"))
            types = association.get("types") or [{}]
            type_id, category = types[0].get("associationTypeId"), types[0].get("associationCategory")
            if to_id not in self.objects["contacts"]:
                return hs_error(400, "VALIDATION_ERROR", f"Object {to_id} of type contact does not exist")
            if category != "HUBSPOT_DEFINED" or type_id != HS_ASSOCIATION.get(kind):
                return hs_error(400, "VALIDATION_ERROR", f"Association type {category}/{type_id} is not valid here")
            links.append(to_id)
        object_id = self._insert(kind, properties)
        self.associations += [(kind, object_id, to_id, HS_ASSOCIATION[kind]) for to_id in links]
        return answer(201, self._object(kind, object_id))

    def search(self, body: dict) -> Answer:
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(group.get("filters") or []) > 6 for group in groups):
            return hs_error(400, "VALIDATION_ERROR", "Too many filter groups or filters")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 < limit <= 200:
            return hs_error(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        for group in groups:
            for condition in group.get("filters") or []:
                if condition.get("operator") != "EQ" or condition.get("propertyName") not in HS_PROPERTIES["contacts"]:
                    return hs_error(400, "VALIDATION_ERROR", f"Unsupported filter {json.dumps(condition)}")
        found = [
            object_id
            for object_id, properties in self.objects["contacts"].items()
            if any(
                all(properties.get(item["propertyName"]) == item["value"] for item in group["filters"])
                for group in groups
            )
        ]
        results = [self._object("contacts", object_id, body.get("properties")) for object_id in found[:limit]]
        return answer(200, {"total": len(found), "results": results})
