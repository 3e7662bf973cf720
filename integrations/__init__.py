"""Outbound notifications: when something happens (an incident nobody acknowledged, a drill), tell the
systems people watch — webhooks, Slack, email — and keep trying until they hear it.

`services.notify()` records one `OutboundMessage` per subscribed integration and queues delivery after
the caller's transaction commits; `services.deliver()` sends one message and records every try as a
`DeliveryAttempt`; the beat sweep `services.retry_due_messages()` picks up whatever a lost task or a
dead worker left behind.
"""
