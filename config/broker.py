"""The Redis broker transport: a worker survives a Redis restart, and one redis-py client per channel.

With celery 5.7.0 / kombu 5.7.0 / redis 8.1.0 (the newest releases), a worker whose broker connection
drops while a channel is in BRPOP with unacknowledged messages crashes: celery's
`on_connection_error_after_connected` first `collect()`s the connection (which detaches the transport,
`transport.client = None`) and then `close()`s it; the second close finds the task channel still
open, tries to hand its unacknowledged messages back (`restore_unacked`), needs a new Redis pool for
that, and builds it from `transport.client.hostname` -> `AttributeError: 'NoneType' object has no
attribute 'hostname'`, which is not a connection error, so the worker stops with "Unrecoverable error".
Measured here with real processes: the `--pool threads` worker died at a Redis restart (as in the
fault-injection run, 7 of 9 restarts); tests/config/test_broker_restart.py restarts Redis under a real
worker process.

The fix: a channel that is closed or whose transport is already detached has no broker connection,
and says so with a connection error, which every caller on that teardown path already tolerates. The unacknowledged
messages stay in Redis's unacked index, and the transport hands them back after the visibility
timeout (settings: CELERY_BROKER_TRANSPORT_OPTIONS); escalation deadlines never depend on that, they
live in the database and the beat sweep re-enqueues what is due.

Selected with CELERY_BROKER_TRANSPORT = "config.broker:Transport" (the URL stays redis://...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    _shared_client = None

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection  # None once the channel is closed, its client None once detached
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel is already closed")
        return super()._connparams(asynchronous=asynchronous)

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """kombu builds a new redis-py client for every publish, acknowledgement and event, and
        building one costs about 120 us (it registers some 170 response callbacks): a quarter of
        the CPU of sending a task, five times per task a worker runs. One client per channel and
        connection pool does the same: a redis-py client holds no connection of its own and is
        safe to share between threads (each command takes a connection from the pool). A new pool
        (after a reconnect or a fork) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel
