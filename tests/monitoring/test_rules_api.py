"""Alert rules through the API: the seed's shape, a 400 naming the field for a bad rule, viewers read and
supervisors (or `policies:write` keys) change them, and the rules as a Prometheus rule file."""

from __future__ import annotations

import pytest
import yaml
from rest_framework.test import APIClient

from accounts.models import Role
from monitoring.models import AlertRule
from tests import factories
from tests.accounts.helpers import person

pytestmark = pytest.mark.django_db

CPU_RULE = {"rule_name": "high_cpu", "metric": "system_cpu_usage_percent", "threshold": 80, "operator": ">"}


def test_a_rule_in_the_seeds_shape_is_created_and_read_back(system_client):
    # when: the seed's body, naming the metric as the seed does
    body = {"rule_name": "cpu over 80", "metric": "cpu_usage_percent", "threshold": 80, "operator": ">"}
    response = system_client.post("/api/v1/alert-rules", {**body, "level": "warning"}, format="json")

    # then: created, with our name for the metric and the defaults
    assert response.status_code == 201, response.content
    rule = response.json()
    assert (rule["metric"], rule["threshold"], rule["operator"], rule["level"]) == (
        "system_cpu_usage_percent",
        80.0,
        ">",
        "warning",
    )
    assert (rule["for_seconds"], rule["labels"], rule["policy"], rule["enabled"], rule["series"]) == (
        0,
        {},
        None,
        True,
        [],
    )
    assert system_client.get(f"/api/v1/alert-rules/{rule['id']}").json() == rule
    assert rule["id"] in [listed["id"] for listed in system_client.get("/api/v1/alert-rules").json()]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "cpu_temperature"}, "metric"),
        ({"operator": "=>"}, "operator"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": "inf"}, "threshold"),
        ({"for_seconds": -5}, "for_seconds"),
        ({"for_seconds": "five minutes"}, "for_seconds"),
        ({"level": "panic"}, "level"),
        ({"labels": ["queue"]}, "labels"),
        ({"labels": {"nonexistent": "v"}}, "labels"),  # the CPU metric has no such label: it would never match
        ({"labels": {'queue="calls"} or vector(10) or x{y': "v"}}, "labels"),  # not a label name: PromQL injection
        ({"metric": "aicc_celery_queue_depth", "labels": {"queue ": "calls"}}, "labels"),
        ({"policy": 999999}, "policy"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(system_client, change, field):
    response = system_client.post("/api/v1/alert-rules", {**CPU_RULE, **change}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"Invalid input: {field}:")


def test_a_second_rule_with_the_same_name_is_a_400(system_client):
    assert system_client.post("/api/v1/alert-rules", CPU_RULE, format="json").status_code == 201

    response = system_client.post("/api/v1/alert-rules", CPU_RULE, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["rule_name"]


def test_patch_changes_a_rule_and_delete_removes_it(system_client):
    policy = factories.policy(factories.contact("Kim"), name="db on-call")
    rule_id = system_client.post("/api/v1/alert-rules", CPU_RULE, format="json").json()["id"]

    patched = system_client.patch(
        f"/api/v1/alert-rules/{rule_id}", {"threshold": 90, "for_seconds": 300, "policy": policy.pk}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["threshold"], patched.json()["policy_name"]) == (90.0, "db on-call")
    assert system_client.patch(f"/api/v1/alert-rules/{rule_id}", {"operator": "~"}, format="json").status_code == 400

    assert system_client.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 204
    missing = system_client.get(f"/api/v1/alert-rules/{rule_id}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Alert rule {rule_id} does not exist."


def test_the_metrics_a_rule_may_watch_are_listed(system_client):
    names = [metric["name"] for metric in system_client.get("/api/v1/alert-rules/metrics").json()]

    assert {"system_cpu_usage_percent", "aicc_api_duration_seconds", "aicc_incidents_open"} <= set(names)


ROLES = [Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN]


@pytest.mark.parametrize("role", ROLES)
def test_viewers_read_rules_and_supervisors_change_them(role, settings):
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person(f"rules-{role.lower()}", role))
    may_write = Role.rank(role) >= Role.rank(Role.SUPERVISOR)

    created = client.post("/api/v1/alert-rules", CPU_RULE, format="json")
    reads = [client.get(path).status_code for path in ("/api/v1/alert-rules", "/api/v1/alert-rules/prometheus.yml")]

    assert reads == [200, 200]
    assert created.status_code == (201 if may_write else 403), created.content
    if not may_write:
        assert created.json()["error"]["message"] == "This needs the SUPERVISOR role or higher."


def test_api_keys_need_incidents_read_to_read_and_policies_write_to_change(make_api_key):
    reader, writer = APIClient(), APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read', name='reader')}")
    writer.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('policies:write', name='writer')}")

    assert reader.get("/api/v1/alert-rules").status_code == 200
    refused = reader.post("/api/v1/alert-rules", CPU_RULE, format="json")
    assert refused.status_code == 403
    assert "policies:write" in refused.json()["error"]["message"]
    assert writer.post("/api/v1/alert-rules", CPU_RULE, format="json").status_code == 201
    assert APIClient().get("/api/v1/alert-rules").status_code in (401, 403)


def test_the_rules_render_as_a_prometheus_rule_file(system_client):
    # given: a CPU rule with a policy, an API response-time rule on one route, and a disabled rule
    system_client.post(
        "/api/v1/alert-rules",
        {**CPU_RULE, "for_seconds": 300, "policy": factories.policy(factories.contact("Lee"), name="web").pk},
        format="json",
    )
    api_rule = {"rule_name": "slow api", "metric": "aicc_api_duration_seconds", "threshold": 5, "operator": ">"}
    api_rule |= {"labels": {"route": '/api/v1/"x"\\'}, "level": "warning", "for_seconds": 90}
    system_client.post("/api/v1/alert-rules", api_rule, format="json")
    off = {**CPU_RULE, "rule_name": "off", "enabled": False}
    system_client.post("/api/v1/alert-rules", off, format="json")

    # when: the rule file is fetched
    response = system_client.get("/api/v1/alert-rules/prometheus.yml")

    # then: YAML in Prometheus's rule-file shape, the enabled rules only
    assert response.status_code == 200
    assert response["Content-Type"] == "text/yaml; charset=utf-8"
    document = yaml.safe_load(response.content.decode())
    [group] = document["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert set(rules) == {"high_cpu", "slow api"}  # the seed's rules are installed disabled
    cpu = rules["high_cpu"]
    assert (cpu["expr"], cpu["for"]) == ("system_cpu_usage_percent > 80", "5m")
    assert cpu["labels"]["severity"] == "critical" and cpu["labels"]["escalation_policy"] == "web"
    assert "CPU 사용률 {{ $value }}" in cpu["annotations"]["summary"]
    slow = rules["slow api"]
    assert slow["expr"] == (
        "histogram_quantile(0.95, sum by (le, method, route) "
        '(rate(aicc_api_duration_seconds_bucket{route="/api/v1/\\"x\\"\\\\"}[5m]))) > 5'
    )  # the value's double quote and backslash are escaped as PromQL strings want
    assert (slow["for"], slow["labels"]["severity"]) == ("90s", "warning")


def test_a_label_the_metric_has_is_accepted_and_the_error_names_the_known_ones(system_client):
    # given: the queue-depth metric, whose series are labelled by queue
    rule = {"rule_name": "backlog", "metric": "aicc_celery_queue_depth", "threshold": 100, "operator": ">"}

    # when: a rule names the queue label, it is accepted; when it names another label, the 400 says which exist
    assert (
        system_client.post("/api/v1/alert-rules", {**rule, "labels": {"queue": "calls"}}, format="json").status_code
        == 201
    )
    refused = system_client.post(
        "/api/v1/alert-rules", {**rule, "rule_name": "b2", "labels": {"host": "a"}}, format="json"
    )

    assert refused.status_code == 400
    assert "queue" in str(refused.json()["error"]["fields"]["labels"])


def test_patching_labels_the_metric_lacks_is_a_400_naming_labels(system_client):
    created = system_client.post("/api/v1/alert-rules", CPU_RULE, format="json").json()

    response = system_client.patch(
        f"/api/v1/alert-rules/{created['id']}", {"labels": {"nonexistent": "v"}}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["labels"]


def test_a_stored_rule_with_a_bad_label_name_is_left_out_of_the_rule_file_never_pasted(system_client):
    # given: a rule row written before label names were checked, whose name would inject PromQL
    created = system_client.post("/api/v1/alert-rules", CPU_RULE, format="json").json()
    AlertRule.objects.filter(pk=created["id"]).update(labels={'q="x"} or vector(10) or x{y': "v"})

    # when: the rule file is rendered, the rule is left out with a comment, and the file stays valid YAML
    text = system_client.get("/api/v1/alert-rules/prometheus.yml").content.decode()

    assert [line for line in text.splitlines() if "expr:" in line] == []
    assert yaml.safe_load(text)["groups"][0]["rules"] == []
    assert "# left out" in text
