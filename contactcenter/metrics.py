"""Amazon Connect's real-time metrics at /metrics: the last snapshot the poller stored
(contactcenter/services.py), read from Redis at scrape time, and the poller's error counter.

Per queue (labels queue = its name, queue_id): agents online, available and on call, contacts in
queue, the oldest contact's age. For the instance: agents by status, and the snapshot's age. Nothing
is exported when CONNECT_INSTANCE_ID is unset or no fresh snapshot exists.
"""

from __future__ import annotations

import time

from django.conf import settings
from prometheus_client import Counter

from config.metrics import gauge

POLL_ERRORS = Counter(
    "aicc_connect_poll_errors", "Amazon Connect polls that failed, by reason (error code)", ["reason"], registry=None
)

# Connect's metric name -> our gauge's name and help.
QUEUE_GAUGES = {
    "AGENTS_ONLINE": ("aicc_connect_agents_online", "Agents online (any status) in the queue's routing profiles"),
    "AGENTS_AVAILABLE": ("aicc_connect_agents_available", "Agents available to take a contact of the queue"),
    "AGENTS_ON_CALL": ("aicc_connect_agents_on_call", "Agents on a contact of the queue"),
    "CONTACTS_IN_QUEUE": ("aicc_connect_contacts_in_queue", "Contacts waiting in the queue"),
    "OLDEST_CONTACT_AGE": ("aicc_connect_oldest_contact_age_seconds", "Age of the longest-waiting contact"),
}


class ConnectCollector:
    source = "amazon_connect"

    def collect(self):
        if not settings.CONNECT_INSTANCE_ID:
            return
        from contactcenter.services import latest_snapshot

        snapshot = latest_snapshot(timeout=settings.METRICS_SOURCE_TIMEOUT_SECONDS)
        if snapshot is None:
            return
        age = max(0.0, time.time() - snapshot["taken_at"])
        yield gauge("aicc_connect_snapshot_age_seconds", "Seconds since Amazon Connect was last polled", age)
        names = snapshot["queue_names"]
        for metric, (name, documentation) in QUEUE_GAUGES.items():
            family = gauge(name, documentation, labels=["queue", "queue_id"])
            for queue_id, values in sorted(snapshot["queue_metrics"].items()):
                if metric in values:
                    family.add_metric([names.get(queue_id, queue_id), queue_id], values[metric])
            yield family
        if snapshot.get("agents_by_status") is not None:
            family = gauge("aicc_connect_agents_by_status", "Agents of the polled queues, by status", labels=["status"])
            for status, count in sorted(snapshot["agents_by_status"].items()):
                family.add_metric([status], count)
            yield family


SCRAPE_COLLECTORS = (ConnectCollector(),)
