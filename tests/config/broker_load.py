"""A task module only the broker-restart test's worker process loads (`celery worker --include`).

`tests.hold` keeps a worker thread busy, so a Redis restart finds messages delivered and not yet
acknowledged: the state in which a worker used to crash. It counts its runs in Redis so the test
sees the worker consume.
"""

from __future__ import annotations

import time

from celery import shared_task

from config.redis import redis_client

DONE_KEY = "tests:hold:done"


@shared_task(name="tests.hold", ignore_result=True, acks_late=True)
def hold(seconds: float) -> None:
    time.sleep(seconds)
    redis_client().incr(DONE_KEY)
