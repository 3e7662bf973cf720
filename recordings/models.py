"""A recording's metadata (the media itself is an encrypted object in storage) and open chat lines.

Call attempt and incident are plain ids: recordings do not import the engine's models.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q


def new_callback_token() -> str:
    """Names a live recording in its carrier callback URL; unguessable, like a call attempt's token."""
    return secrets.token_urlsafe(24)


class Kind(models.TextChoices):
    VOICE = "voice", "Voice"
    CHAT = "chat", "Chat"


class Status(models.TextChoices):
    RECORDING = "recording", "Recording"  # open: audio may be uploaded, chat lines appended
    PROCESSING = "processing", "Processing"  # stopped or closed; a worker transcodes and stores
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"
    PURGED = "purged", "Purged"  # the object is gone; this row is its tombstone


class Quality(models.TextChoices):
    LOSSLESS = "lossless", "Lossless (FLAC)"
    HIGH = "high", "High (MP3 64 kbps mono)"
    STANDARD = "standard", "Standard (MP3 32 kbps mono)"
    LOW = "low", "Low (MP3 16 kbps mono)"


class Recording(models.Model):
    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECORDING, db_index=True)
    session_id = models.CharField(max_length=200, db_index=True)
    agent_id = models.CharField(max_length=200, db_index=True)
    customer_id = models.CharField(max_length=200, db_index=True)
    channel = models.CharField(max_length=50, blank=True, help_text="chat: web, kakao, sms, …")
    call_attempt_id = models.BigIntegerField(null=True, blank=True)
    incident_id = models.BigIntegerField(null=True, blank=True)
    carrier = models.CharField(max_length=20, blank=True)
    carrier_recording_id = models.CharField(max_length=100, blank=True)
    carrier_call_id = models.CharField(max_length=64, blank=True)
    carrier_media_url = models.CharField(max_length=500, blank=True, help_text="where the carrier serves the audio")
    callback_token = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    quality = models.CharField(max_length=10, choices=Quality.choices, blank=True)
    source_format = models.CharField(max_length=10, blank=True)
    source_codec = models.CharField(max_length=30, blank=True)
    source_size_bytes = models.BigIntegerField(null=True, blank=True)
    format = models.CharField(max_length=10, blank=True, help_text="of the stored file: flac, mp3, json.gz")
    codec = models.CharField(max_length=30, blank=True)
    sample_rate = models.IntegerField(null=True, blank=True)
    channels = models.IntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="of the decrypted file")
    stored_size_bytes = models.BigIntegerField(null=True, blank=True, help_text="of the encrypted object")

    # The object the row points at now: the encrypted upload while recording/processing, the
    # processed file once stored. The data key is wrapped by master key `key_id`.
    storage_backend = models.CharField(max_length=10, blank=True)
    storage_key = models.CharField(max_length=300, blank=True)
    key_id = models.CharField(max_length=50, blank=True, db_index=True)
    wrapped_key = models.BinaryField(null=True, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, blank=True, help_text="of the decrypted file")

    failure_reason = models.TextField(blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="overrides the kind's default")
    retention_until = models.DateTimeField(null=True, blank=True, db_index=True)
    legal_hold = models.BooleanField(default=False)
    purged_at = models.DateTimeField(null=True, blank=True)
    purge_reason = models.CharField(max_length=200, blank=True)
    # The last time work (a fetch or processing) was queued for this row, and how many times: the
    # sweep re-queues work that never finished (a lost message, a worker killed for good) and gives
    # up after RECORDINGS_MAX_WORK_TRIES.
    work_queued_at = models.DateTimeField(null=True, blank=True, db_index=True)
    work_tries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "retention_until"], name="recording_purge_due")]
        constraints = [
            # a repeated recording callback finds the row it made, never a second one
            models.UniqueConstraint(
                fields=["carrier", "carrier_recording_id"],
                condition=~Q(carrier_recording_id=""),
                name="recording_one_row_per_carrier_recording",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} recording {self.pk} ({self.status})"


class ChatMessage(models.Model):
    """A line of an open chat. Deleted once the closed log is stored encrypted (plaintext at rest
    only while the chat is open)."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=200)
    text = models.TextField()
    sent_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    # the platform's own id of the line (a Meta message mid, an X DM event id), prefixed by channel:
    # a redelivered webhook finds its line and adds nothing (integrations.social)
    external_id = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["sent_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="chat_message_once_per_external_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender} at {self.sent_at:%H:%M:%S}"
