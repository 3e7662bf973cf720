"""The Redis broker transport: a worker survives a Redis restart, one redis-py client per channel, and
an acknowledgement wakes the worker's event loop.

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

A worker fetches a message only while it holds fewer unacknowledged ones than its prefetch limit
(concurrency x prefetch multiplier: 16 for the calls worker). Once every slot is taken, its event
loop stops asking Redis and sleeps in its poll for up to a second; a task that ends in a pool thread
acknowledges there, and nothing woke the loop, so the next message waited for that second. In an
alert storm's opening second the first calls of some incidents waited 0.5 s on the broker that way
(bench/alert_storm.py, from the 201 to the calls worker's "received" line). QoS.ack now wakes the
loop (kombu's Hub.call_soon, which signals its waker from another thread), and it asks at once.

Selected with CELERY_BROKER_TRANSPORT = "config.broker:Transport" (the URL stays redis://...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


def _nothing() -> None:
    """The callback that only wakes the event loop."""


class QoS(kombu_redis.QoS):
    def ack(self, delivery_tag: Any) -> None:
        super().ack(delivery_tag)
        _wake_event_loop(self.channel)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        _wake_event_loop(self.channel)


def _wake_event_loop(channel: Any) -> None:
    """A slot of the prefetch limit is free: the worker's event loop asks Redis for the next message
    now, not after its poll times out. Nothing to do outside a worker (no event loop registered)."""
    transport = channel.connection
    loop = getattr(transport, "event_loop", None)
    if loop is not None:
        loop.call_soon(_nothing)


class Channel(kombu_redis.Channel):
    QoS = QoS
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
    event_loop = None  # the worker's Hub, once the consumer registers with it

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.event_loop = loop
        super().register_with_event_loop(connection, loop)
