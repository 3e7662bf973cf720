"""The response-times report (MTTA / MTTR): numbers from incidents whose times we know, drills left
out, the window and policy filters, bad input named, who may read it, and the admin page with its chart."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role, Scope
from incidents.models import EventKind, Incident, IncidentEvent, IncidentState
from tests import factories
from tests.accounts.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db

REPORT = "/api/v1/reports/response-times"
DAY = "2025-03-10"


def at(hour: int, minute: int = 0, second: int = 0, day: str = DAY) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:{second:02d}"))


def incident(policy, *, opened, acknowledged=None, resolved=None, by="", calls=1, drill=False, exhausted=False):
    """An incident row with the times we say (created_at is set after the insert: it is auto_now_add)."""
    state = IncidentState.RESOLVED if resolved else IncidentState.ACKNOWLEDGED if acknowledged else "triggered"
    if exhausted and not acknowledged:
        state = IncidentState.EXHAUSTED
    row = Incident.objects.create(summary="disk full", policy=policy, state=state, is_drill=drill, current_step=calls)
    Incident.objects.filter(pk=row.pk).update(
        created_at=opened, acknowledged_at=acknowledged, resolved_at=resolved, acknowledged_by=by
    )
    if exhausted:
        IncidentEvent.objects.create(incident=row, kind=EventKind.EXHAUSTED, message="nobody answered")
    return row


@pytest.fixture
def night(db):
    """Given one night of the 'db' policy: four real incidents, a drill, and one on another policy."""
    kim = factories.contact("Kim")
    db_policy = factories.policy(kim, name="db")
    web_policy = factories.policy(kim, name="web", is_default=False)
    # acknowledged after 60 s, 120 s, 300 s; resolved after 600 s, 1200 s; one exhausted and never acknowledged
    incident(db_policy, opened=at(1), acknowledged=at(1, 1), resolved=at(1, 10), by="Kim", calls=1)
    incident(db_policy, opened=at(2), acknowledged=at(2, 2), resolved=at(2, 20), by="Kim", calls=2)
    incident(db_policy, opened=at(3), acknowledged=at(3, 5), by="Lee", calls=3, exhausted=True)
    incident(db_policy, opened=at(4), calls=6, exhausted=True)
    # a drill answered in 10 hours would wreck the numbers: it must not count
    incident(db_policy, opened=at(5), acknowledged=at(15), resolved=at(16), by="Drill", calls=9, drill=True)
    incident(web_policy, opened=at(6), acknowledged=at(6, 0, 30), by="Park", calls=1)
    return db_policy


def reader(role: str = Role.SUPERVISOR) -> APIClient:
    client = APIClient()
    client.force_authenticate(person(f"reader-{role.lower()}", role))
    return client


# --- the numbers -------------------------------------------------------------------------------


def test_the_report_counts_and_measures_the_policys_real_incidents(night, settings):
    settings.MFA_REQUIRED_ROLES = []

    body = reader().get(REPORT, {"from": DAY, "to": DAY, "policy": "db"}).json()

    assert body["policy"] == {"id": night.pk, "name": "db"}
    assert body["counts"] == {"opened": 4, "acknowledged": 3, "resolved": 2, "exhausted": 2}
    # MTTA over 60, 120, 300 s: p50 120, p90 = 120 + 0.8 * 180 (linear, as percentile_cont)
    assert body["time_to_acknowledge"] == {
        "count": 3,
        "p50_seconds": 120.0,
        "p90_seconds": 264.0,
        "mean_seconds": 160.0,
    }
    # MTTR over 600, 1200 s
    assert body["time_to_resolve"] == {"count": 2, "p50_seconds": 900.0, "p90_seconds": 1140.0, "mean_seconds": 900.0}
    assert body["acknowledged_by"] == [
        {"person": "Kim", "count": 2, "p50_seconds": 90.0},
        {"person": "Lee", "count": 1, "p50_seconds": 300.0},
    ]
    assert body["calls_per_incident"] == {"mean": 3.0, "max": 6}
    assert body["drills_excluded"] is True


def test_drills_are_left_out_and_every_policy_counts_without_a_policy(night, settings):
    settings.MFA_REQUIRED_ROLES = []

    body = reader().get(REPORT, {"from": DAY, "to": DAY}).json()

    assert body["policy"] is None
    assert body["counts"]["opened"] == 5  # the four of 'db' and the one of 'web'; not the drill
    assert "Drill" not in [row["person"] for row in body["acknowledged_by"]]
    assert body["calls_per_incident"]["max"] == 6


def test_the_policy_can_be_named_by_id_and_the_window_leaves_other_days_out(night, settings):
    settings.MFA_REQUIRED_ROLES = []

    client = reader()
    by_id = client.get(REPORT, {"from": DAY, "to": DAY, "policy": str(night.pk)}).json()
    next_day = client.get(REPORT, {"from": "2025-03-11", "to": "2025-03-12", "policy": "db"}).json()

    assert by_id["counts"]["opened"] == 4
    assert next_day["counts"] == {"opened": 0, "acknowledged": 0, "resolved": 0, "exhausted": 0}
    assert next_day["time_to_acknowledge"]["p50_seconds"] is None
    assert next_day["calls_per_incident"] == {"mean": None, "max": None}


def test_without_dates_the_report_covers_the_last_seven_days(settings):
    settings.MFA_REQUIRED_ROLES = []
    policy = factories.policy(factories.contact("Kim"))
    incident(policy, opened=timezone.now() - timedelta(days=2))
    incident(policy, opened=timezone.now() - timedelta(days=9))

    body = reader().get(REPORT).json()

    today = timezone.localdate()
    assert (body["from"], body["to"]) == (str(today - timedelta(days=6)), str(today))
    assert body["counts"]["opened"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-02-30"}, "to"),
        ({"from": "2025-03-12", "to": "2025-03-10"}, "from"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "from"),
        ({"policy": "no-such-policy"}, "policy"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(params, field, settings):
    settings.MFA_REQUIRED_ROLES = []

    response = reader().get(REPORT, params)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "0001-01-01"}, "to"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "1999-12-31", "to": "2000-01-01"}, "from"),
        ({"from": "2100-12-31", "to": "2101-01-01"}, "to"),
    ],
)
def test_a_day_outside_2000_to_2100_is_a_400_naming_the_field(params, field, settings):
    # given a supervisor asking for a window at the edge of the calendar (once a 500: date overflow)
    settings.MFA_REQUIRED_ROLES = []

    response = reader().get(REPORT, params)

    # then it is a 400 that names the field and says which days are accepted
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert "between 2000-01-01 and 2100-12-31" in response.json()["error"]["fields"][field]


def test_the_first_and_last_supported_days_still_report(settings):
    settings.MFA_REQUIRED_ROLES = []

    client = reader()

    first = client.get(REPORT, {"from": "2000-01-01", "to": "2000-01-01"})
    last = client.get(REPORT, {"from": "2100-12-31", "to": "2100-12-31"})

    assert (first.status_code, last.status_code) == (200, 200)
    assert last.json()["to"] == "2100-12-31" and last.json()["counts"]["opened"] == 0


# --- who may read ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.VIEWER, False), (Role.AGENT, False), (Role.SUPERVISOR, True), (Role.ADMIN, True), (Role.SUPER_ADMIN, True)],
)
def test_people_need_the_supervisor_role(role, allowed, settings):
    settings.MFA_REQUIRED_ROLES = []

    response = reader(role).get(REPORT)

    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert "SUPERVISOR" in response.json()["error"]["message"]


def test_an_api_key_needs_incidents_read(make_api_key):
    with_scope, without = APIClient(), APIClient()
    with_scope.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key(Scope.INCIDENTS_READ)}")
    without.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key(Scope.ALERTS_WRITE, name='alerts')}")

    assert with_scope.get(REPORT).status_code == 200
    refused = without.get(REPORT)
    assert refused.status_code == 403 and "incidents:read" in refused.json()["error"]["message"]
    assert APIClient().get(REPORT).status_code in (401, 403)


# --- the admin page ----------------------------------------------------------------------------


def admin_client(role: str) -> Client:
    person(f"page-{role.lower()}", role)
    client = Client()
    client.post("/admin/login/", {"username": f"page-{role.lower()}", "password": PASSWORD, "next": "/admin/"})
    return client


def test_an_admin_finds_the_report_on_the_index_and_sees_the_numbers_and_the_chart(night, settings):
    settings.MFA_REQUIRED_ROLES = []
    client = admin_client(Role.ADMIN)

    index = client.get("/admin/").content.decode()
    page = client.get("/admin/reports/response-times/", {"from": DAY, "to": DAY, "policy": night.pk})

    assert 'href="/admin/reports/response-times/"' in index
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="oc-opened">4<' in html and 'id="oc-exhausted">2<' in html
    assert 'id="oc-mtta">2 min / 4 min 24 s<' in html  # 120 s and 264 s
    assert html.count('<svg class="oc-chart"') == 2 and 'data-label="1-5 min" data-count="2"' in html
    assert "<td>Kim</td><td>2</td>" in html and "Drill" not in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)  # nothing from another host


def test_a_bad_date_on_the_page_is_said_and_the_default_window_shown(settings):
    settings.MFA_REQUIRED_ROLES = []

    page = admin_client(Role.ADMIN).get("/admin/reports/response-times/", {"from": "soon"})

    assert page.status_code == 200
    assert "is not an ISO date" in page.content.decode()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SUPERVISOR])
def test_people_below_admin_are_sent_to_the_sign_in_and_see_no_link(role, settings):
    settings.MFA_REQUIRED_ROLES = []
    client = admin_client(role)

    response = client.get("/admin/reports/response-times/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("params", [{"to": "0001-01-01"}, {"from": "9999-12-31", "to": "9999-12-31"}])
def test_a_day_outside_the_supported_range_on_the_page_is_said_and_the_default_window_shown(params, settings):
    # given an admin who typed a day far outside the calendar we keep (once a 500: date overflow)
    settings.MFA_REQUIRED_ROLES = []

    page = admin_client(Role.ADMIN).get("/admin/reports/response-times/", params)

    # then the page says so, like any other bad date, and shows the last seven days instead
    assert page.status_code == 200
    html = page.content.decode()
    assert "between 2000-01-01 and 2100-12-31" in html
    assert str(timezone.localdate()) in html
