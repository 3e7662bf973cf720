"""python manage.py drill --policy NAME [--timeout 180]: run a drill and print its report (JSON).

Needs the worker (and beat) running, as under `make run`: the calls are placed by them.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from incidents.models import EscalationPolicy
from incidents.selectors import policy_by_reference
from orchestrator.drills import drill_report, start_drill


class Command(BaseCommand):
    help = "Run a test incident, marked as a drill, through the policy's contacts and report what happened."

    def add_arguments(self, parser):
        parser.add_argument("--policy", required=True, help="the escalation policy's name or id")
        parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the outcome")

    def handle(self, *args, policy: str, timeout: float, **options):
        found = policy_by_reference(policy)
        if found is None:
            names = ", ".join(EscalationPolicy.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No escalation policy {policy!r}. Policies: {names}.")
        incident = start_drill(found, actor="command:drill")
        self.stderr.write(f"Drill #{incident.pk} started for policy {found.name!r}; waiting up to {timeout:.0f}s...")
        deadline = time.monotonic() + timeout
        report = drill_report(incident.pk)
        while report["outcome"] == "in_progress" and time.monotonic() < deadline:
            time.sleep(1)
            report = drill_report(incident.pk)
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        if report["outcome"] == "in_progress":
            raise CommandError("The drill did not finish in time: are the worker and beat running?")
