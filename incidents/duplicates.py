"""Alerts that only join an open incident: the hot path of an alert storm.

A duplicate is joined without locking the incident, so duplicates never queue behind each other's
commits or behind a transition holding the incident's lock. On PostgreSQL one statement finds the
open incident and inserts the alert row (one round trip, in one snapshot); elsewhere (SQLite, the
embedded default) the ORM does the same in three statements. Anything that is not a plain duplicate
(no open incident, a re-trigger due) is left to the locked path of services.open_incident.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from config.metrics import DB_QUERY_DURATION
from incidents.models import OPEN_STATES, Alert, Incident, IncidentState

# The key whose duplicate statement the fast lane ran for this request and found nothing to join.
_missed_in_lane: contextvars.ContextVar[str | None] = contextvars.ContextVar("missed_in_lane", default=None)


@contextlib.contextmanager
def already_missed(dedup_key: str | None) -> Iterator[None]:
    """Within it, join_as_duplicate does not run its statement again for `dedup_key`: the caller
    just ran it and found nothing. The locked path still decides everything under the row lock, so
    an incident committed in between is found there, only a little later."""
    token = _missed_in_lane.set(dedup_key)
    try:
        yield
    finally:
        _missed_in_lane.reset(token)


def join_as_duplicate(dedup_key: str | None, *, source: str, payload: dict, actor: str) -> Incident | None:
    """The incident this alert joined as a plain duplicate (its alert row stored), or None: then the
    caller takes the locked path, which decides under the row lock."""
    if not dedup_key or dedup_key == _missed_in_lane.get():
        return None
    if connection.vendor == "postgresql":
        return _join_in_one_statement(dedup_key, source=source, payload=payload, actor=actor)
    found = (
        Incident.objects.filter(dedup_key=dedup_key, state__in=OPEN_STATES)
        .only("pk", "state", "acknowledged_at")
        .first()
    )
    if found is None or retrigger_reason(found):
        return None
    alert = Alert.objects.create(
        incident_id=found.pk, source=source, payload=payload, received_by=actor, duplicate=True
    )
    # Still open in the same state? A resolve or re-trigger committed between the two reads makes
    # this alert the locked path's to place (it may open a new incident): this row is withdrawn.
    if not Incident.objects.filter(pk=found.pk, state=found.state).exists():
        Alert.objects.filter(pk=alert.pk).delete()
        return None
    return found


# One statement, one round trip, no ORM compile (the ORM's cost per query was most of a duplicate's
# CPU): find the open incident that this alert only joins (calling, or acknowledged recently enough
# that no re-trigger is due: the conditions of retrigger_reason) and insert the alert row, in one
# snapshot, so no resolve or re-trigger can slip between the check and the insert.
_JOIN_SQL = f"""
WITH found AS (
    SELECT id, state FROM {Incident._meta.db_table}
    WHERE dedup_key = %(key)s
      AND (state = %(triggered)s OR (state = %(acknowledged)s AND (%(no_retrigger)s OR acknowledged_at >= %(cutoff)s)))
    LIMIT 1
), joined AS (
    INSERT INTO {Alert._meta.db_table} (incident_id, source, status, payload, received_at, received_by, duplicate)
    SELECT id, %(source)s, 'firing', %(payload)s::jsonb, %(now)s, %(actor)s, TRUE FROM found
    RETURNING incident_id
)
SELECT found.id, found.state FROM found JOIN joined ON joined.incident_id = found.id
"""  # noqa: S608 (table names from the models; every value is a parameter)


def _join_in_one_statement(dedup_key: str, *, source: str, payload: dict, actor: str) -> Incident | None:
    """Sent on the connection's own psycopg cursor with server-side binding: neither Django's cursor
    wrappers nor client-side quoting of the payload run per alert (a fifth of the lane's CPU,
    measured in-process). Not prepared: a prepared plan cost PostgreSQL more CPU here, not less.
    Errors are Django's, as through the ORM; the query is timed into the same metric."""
    now = timezone.now()
    minutes = settings.ALERT_RETRIGGER_AFTER_ACK_MINUTES
    values = {
        "key": dedup_key,
        "triggered": IncidentState.TRIGGERED,
        "acknowledged": IncidentState.ACKNOWLEDGED,
        "no_retrigger": minutes <= 0,
        "cutoff": now - timedelta(minutes=max(minutes, 0)),
        "source": source,
        "payload": json.dumps(payload, cls=DjangoJSONEncoder),
        "now": now,
        "actor": actor[:200],
    }
    started = time.perf_counter()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_JOIN_SQL, values, prepare=False)
        row = cursor.fetchone()
    DB_QUERY_DURATION.observe(time.perf_counter() - started)
    if row is None:
        return None
    # As the ORM builds a row it loaded (the other fields load on first use); 4x cheaper than Incident(...)
    loaded = {"id": row[0], "state": row[1], "dedup_key": dedup_key}
    return Incident.from_db(connection.alias, _JOINED_FIELDS, [loaded[name] for name in _JOINED_FIELDS])


# from_db takes the loaded values in the model's field order
_JOINED_FIELDS = [
    field.attname for field in Incident._meta.concrete_fields if field.attname in ("id", "state", "dedup_key")
]


def retrigger_reason(incident: Incident) -> str:
    """Why a new firing alert for this open incident should ring phones again, or "" when it is a
    plain duplicate: every call of the last round went unanswered (exhausted), or the acknowledgement
    is older than ALERT_RETRIGGER_AFTER_ACK_MINUTES (0 turns that off)."""
    if incident.state == IncidentState.EXHAUSTED:
        return "a new alert arrived after every call went unanswered"
    minutes = settings.ALERT_RETRIGGER_AFTER_ACK_MINUTES
    if (
        incident.state == IncidentState.ACKNOWLEDGED
        and minutes > 0
        and incident.acknowledged_at is not None
        and incident.acknowledged_at < timezone.now() - timedelta(minutes=minutes)
    ):
        return f"the alert still fires more than {minutes:g} minutes after it was acknowledged"
    return ""
