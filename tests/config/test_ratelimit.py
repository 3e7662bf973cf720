"""The shared token bucket (config/ratelimit.py) against the real Redis: exact for a slow bucket,
and for a fast one leased a few tokens at a time, so a storm costs one round trip per lease."""

from __future__ import annotations

import time

import pytest

from config import ratelimit
from config.redis import redis_client

KEY = "oncall:alert-rate:test-bucket"


@pytest.fixture(autouse=True)
def empty_bucket():
    redis_client().delete(KEY)
    ratelimit.forget_leases()
    yield
    redis_client().delete(KEY)
    ratelimit.forget_leases()


def tokens_in_redis() -> float:
    return float(redis_client().hget(KEY, "tokens"))


def test_a_bucket_taken_one_at_a_time_lets_its_capacity_through_then_says_how_long_to_wait():
    allowed = [ratelimit.take(KEY, rate=1 / 60, capacity=3) for _ in range(4)]
    assert allowed[:3] == [0.0, 0.0, 0.0]
    assert 55 < allowed[3] <= 60  # one token refills in a minute


def test_a_leased_bucket_asks_redis_once_per_lease_and_still_stops_at_its_capacity():
    # given a bucket of 10 (refilling slowly), taken with leases of 4
    first = ratelimit.take(KEY, rate=0.001, capacity=10, lease=4)
    # then one round trip took 4 tokens: 6 are left in Redis, 3 are held here
    assert first == 0.0 and tokens_in_redis() == pytest.approx(6, abs=0.01)
    assert [ratelimit.take(KEY, rate=0.001, capacity=10, lease=4) for _ in range(3)] == [0.0] * 3
    assert tokens_in_redis() == pytest.approx(6, abs=0.01)
    # and the rest goes as Redis grants it: 4, then the last 2, then a wait
    rest = [ratelimit.take(KEY, rate=0.001, capacity=10, lease=4) for _ in range(7)]
    assert rest[:6] == [0.0] * 6 and rest[6] > 0


def test_tokens_held_here_lapse_so_a_quiet_process_keeps_none(monkeypatch):
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 0.05)
    ratelimit.take(KEY, rate=0.001, capacity=10, lease=5)  # 5 taken from Redis, 4 held here
    time.sleep(0.1)
    ratelimit.take(KEY, rate=0.001, capacity=10, lease=5)  # the 4 lapsed: Redis is asked again
    assert tokens_in_redis() == pytest.approx(0, abs=0.01)


def test_alert_intake_leases_only_a_fast_bucket(settings):
    from accounts.throttles import alert_rate_wait

    settings.ALERT_RATE_PER_KEY = "60000/min"
    alert_rate_wait("api-key:77")
    fast = [key for key in redis_client().scan_iter(match="oncall:alert-rate:*")]
    assert len(fast) == 1 and float(redis_client().hget(fast[0], "tokens")) == pytest.approx(60000 - 20, abs=1)
    settings.ALERT_RATE_PER_KEY = "2/min"
    assert [alert_rate_wait("api-key:78") for _ in range(3)][:2] == [0.0, 0.0]
    assert alert_rate_wait("api-key:78") > 0
