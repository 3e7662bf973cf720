"""Alert-rule evaluation benchmark: one run of `monitoring.evaluate_rules` over 1,000 enabled rules.

Prints one JSON object with the wall time of one evaluation (ms) in three situations:
- steady_ms: p50/max over --rounds runs where no rule changes state (every series updated in place);
- pending_ms: the run where every rule's condition starts to hold (1,000 series go pending);
- firing_ms: the run where they all fire: --critical of them open an incident each (the policy's first
  call enqueued on the broker), the others are warnings (integrations told; none is configured here).
The metric is a bench gauge with 10 series registered through MONITORING_EXTRA_METRICS, so the figures
are the evaluation's own cost, not psutil's or the broker's.

Usage: .venv/bin/python bench/rule_evaluation.py [--rules 1000] [--critical 100] [--rounds 10]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_rulebench` is created next to the
named one; the Redis database is flushed), else SQLite in var/ and an embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.escalation_latency import prepare_database  # noqa: E402 (after the project is on the path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

VALUE = {"now": 10.0}


def bench_gauge() -> dict:
    """10 series, host=h0..h9, all at the current bench value."""
    return {(("host", f"h{index}"),): VALUE["now"] for index in range(10)}


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--critical", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = prepare_database("rulebench")
    if not os.environ.get("REDIS_URL"):
        from bench.escalation_latency import start_redis

        os.environ["REDIS_URL"] = start_redis(processes=[])
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from config.redis import redis_client
    from incidents.services import create_contact, create_policy
    from monitoring.models import AlertRule, RuleSeries
    from monitoring.services import evaluate_rules

    settings.MONITORING_EXTRA_METRICS = {"bench_gauge": "bench.rule_evaluation.bench_gauge"}
    redis_client(settings.CELERY_BROKER_URL).flushdb()
    call_command("migrate", verbosity=0)
    AlertRule.objects.all().delete()
    create_policy(name="bench", contacts=[create_contact(name="Kim", phone="+821012345678")], is_default=True)
    AlertRule.objects.bulk_create(
        AlertRule(
            rule_name=f"rule-{index}",
            metric="bench_gauge",
            operator=">",
            threshold=50,
            for_seconds=1,
            labels={"host": f"h{index % 10}"},
            level="critical" if index < args.critical else "warning",
        )
        for index in range(args.rules)
    )

    steady = [timed(evaluate_rules) for _ in range(args.rounds)]
    import bench.rule_evaluation as gauge_module  # the module the setting imports (this file runs as __main__)

    gauge_module.VALUE["now"] = 90.0
    pending = timed(evaluate_rules)
    time.sleep(1.1)
    firing = timed(evaluate_rules)
    result = {
        "rules": args.rules,
        "critical": args.critical,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "steady_ms": {"p50": round(statistics.median(steady), 1), "max": round(max(steady), 1)},
        "pending_ms": round(pending, 1),
        "firing_ms": round(firing, 1),
        "firing_series": RuleSeries.objects.filter(state="firing").count(),
    }
    redis_client(settings.CELERY_BROKER_URL).flushdb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
