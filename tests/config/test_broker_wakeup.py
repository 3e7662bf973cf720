"""An acknowledgement wakes the worker's event loop (config/broker.py).

A worker holding as many unacknowledged messages as its prefetch limit stops asking Redis for more
and sleeps in its poll for up to a second. A task that ends in a pool thread acknowledges there; the
loop must wake then and ask again, or the next dial waits out that second on the broker.
"""

from __future__ import annotations

import select
import threading

import pytest
from kombu.asynchronous import Hub

from config.celery import app as celery_app


def test_an_acknowledgement_in_a_pool_thread_wakes_the_workers_event_loop():
    # given a worker's event loop (a real kombu Hub) registered with our Redis transport, which has
    # taken a message from the broker and not yet acknowledged it
    hub = Hub()
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue("tests-wake-on-ack")
        queue.queue.purge()
        queue.put({"dial": 1})
        message = queue.get(timeout=5)
        connection.transport.register_with_event_loop(connection.connection, hub)
        loop = hub.create_loop()
        next(loop)  # one turn: this thread is the loop's now, and it polls its waker
        waker = hub._waker  # kombu's self-pipe that Hub.call_soon writes to from another thread
        select.select([waker.fileno()], [], [], 0)  # nothing pending yet
        waker.drain()

        # when the task ends in a pool thread, which acknowledges the message there
        pool_thread = threading.Thread(target=message.ack)
        pool_thread.start()
        pool_thread.join()

        # then the loop's waker is readable: its poll returns at once and it asks Redis again
        readable, _, _ = select.select([waker.fileno()], [], [], 5)
        assert readable == [waker.fileno()]
        queue.close()
    hub.close()


def test_outside_a_worker_an_acknowledgement_needs_no_event_loop():
    # given a connection no event loop registered with (a script, a test)
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue("tests-wake-on-ack")
        queue.queue.purge()
        queue.put({"dial": 2})

        # when a message is taken and acknowledged
        queue.get(timeout=5).ack()

        # then that is all that happens: nothing to wake, and the message is gone for good
        assert connection.transport.event_loop is None
        with pytest.raises(queue.Empty):
            queue.get(block=False)
        queue.close()
