"""Reading Amazon Connect's real-time metrics through boto3 (`connect`): per-queue current metrics
(GetCurrentMetricData, grouped by QUEUE) and the agents' current status (GetCurrentUserData).

Credentials come from boto3's usual chain (an instance or task role in production, AWS_* variables
elsewhere); the region and an optional endpoint (a VPC endpoint, or a local server in tests) from
settings. Every call has a connect and read timeout and botocore's standard retries (which back off on
ThrottlingException); what still fails is raised to the caller (contactcenter.services).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

# Connect's metric name and the unit it is asked for. Grouped by queue, OLDEST_CONTACT_AGE is in seconds.
CURRENT_METRICS = (
    ("AGENTS_ONLINE", "COUNT"),
    ("AGENTS_AVAILABLE", "COUNT"),
    ("AGENTS_ON_CALL", "COUNT"),
    ("CONTACTS_IN_QUEUE", "COUNT"),
    ("OLDEST_CONTACT_AGE", "SECONDS"),
)
MAX_QUEUES_PER_CALL = 100  # Filters.Queues takes at most 100 ids


class BadResponse(Exception):
    """Connect (or something in between) answered 200 with a body that is not its answer."""


@dataclass
class Snapshot:
    """One poll: {queue id: {metric name: value}}, queue names, agents counted by their status name."""

    taken_at: float
    queue_names: dict[str, str]
    queue_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    agents_by_status: dict[str, int] | None = None  # None: the user data could not be read

    def as_json(self) -> dict:
        return {
            "taken_at": self.taken_at,
            "queue_names": self.queue_names,
            "queue_metrics": self.queue_metrics,
            "agents_by_status": self.agents_by_status,
        }


def connect_client():
    import boto3
    from botocore.config import Config

    timeout = settings.CONNECT_HTTP_TIMEOUT_SECONDS
    return boto3.session.Session().client(
        "connect",
        region_name=settings.CONNECT_REGION,
        endpoint_url=settings.CONNECT_ENDPOINT_URL or None,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # total_max_attempts counts the first try ("max_attempts" would count retries only)
            retries={"total_max_attempts": settings.CONNECT_MAX_ATTEMPTS, "mode": "standard"},
        ),
    )


def _chunks(items: list[str], size: int = MAX_QUEUES_PER_CALL):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def queues(client, instance_id: str) -> dict[str, str]:
    """{queue id: name}: CONNECT_QUEUE_IDS when set (named by id: no ListQueues right needed), else every
    standard queue of the instance."""
    if settings.CONNECT_QUEUE_IDS:
        return {queue_id: queue_id for queue_id in settings.CONNECT_QUEUE_IDS}
    found: dict[str, str] = {}
    for page in client.get_paginator("list_queues").paginate(InstanceId=instance_id, QueueTypes=["STANDARD"]):
        for summary in page.get("QueueSummaryList", []):
            found[summary["Id"]] = summary.get("Name") or summary["Id"]
    return found


def current_metrics(client, instance_id: str, queue_ids: list[str]) -> dict[str, dict[str, float]]:
    wanted = [{"Name": name, "Unit": unit} for name, unit in CURRENT_METRICS]
    by_queue: dict[str, dict[str, float]] = {}
    for chunk in _chunks(queue_ids):
        request = {"InstanceId": instance_id, "Filters": {"Queues": chunk}, "Groupings": ["QUEUE"], "MaxResults": 100}
        for page in _pages(client.get_current_metric_data, CurrentMetrics=wanted, **request):
            if "DataSnapshotTime" not in page:  # every real answer has it; a proxy's HTML page parses as {}
                raise BadResponse("GetCurrentMetricData answered without DataSnapshotTime")
            for result in page.get("MetricResults", []):
                queue_id = result.get("Dimensions", {}).get("Queue", {}).get("Id")
                if not queue_id:
                    continue
                values = by_queue.setdefault(queue_id, {})
                for collection in result.get("Collections", []):
                    if collection.get("Value") is not None:
                        values[collection["Metric"]["Name"]] = float(collection["Value"])
    return by_queue


def _pages(operation, **request):
    """Follows NextToken (botocore has no paginator for the real-time calls)."""
    token = None
    while True:
        page = operation(**request, **({"NextToken": token} if token else {}))
        yield page
        token = page.get("NextToken")
        if not token:
            return


def agents_by_status(client, instance_id: str, queue_ids: list[str]) -> dict[str, int]:
    """How many agents of these queues are in each status ("Available", "Offline", custom ones)."""
    statuses: dict[str, str] = {}  # user id -> status: an agent in several queues counts once
    for chunk in _chunks(queue_ids):
        request = {"InstanceId": instance_id, "Filters": {"Queues": chunk}, "MaxResults": 100}
        for page in _pages(client.get_current_user_data, **request):
            for user in page.get("UserDataList", []):
                user_id = user.get("User", {}).get("Id") or str(len(statuses))
                statuses[user_id] = user.get("Status", {}).get("StatusName") or "unknown"
    return dict(Counter(statuses.values()))
