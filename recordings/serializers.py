"""Input and output shapes of the recordings API."""

from __future__ import annotations

from rest_framework import serializers

from config.pagination import limit_field, offset_field
from recordings.models import Kind, Quality, Recording


class StartVoiceIn(serializers.Serializer):
    session_id = serializers.CharField(max_length=200)
    agent_id = serializers.CharField(max_length=200)
    customer_id = serializers.CharField(max_length=200)
    call_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    quality = serializers.ChoiceField(choices=Quality.choices, required=False)
    retention_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)


class OpenChatIn(serializers.Serializer):
    session_id = serializers.CharField(max_length=200)
    agent_id = serializers.CharField(max_length=200)
    customer_id = serializers.CharField(max_length=200)
    channel = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    retention_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)


class ChatMessageIn(serializers.Serializer):
    sender = serializers.CharField(max_length=200)
    text = serializers.CharField(max_length=20000, trim_whitespace=False)
    sent_at = serializers.DateTimeField()


class ChangeRecordingIn(serializers.Serializer):
    legal_hold = serializers.BooleanField(required=False, help_text="true: never purged until lifted")
    retention_days = serializers.IntegerField(
        min_value=1,
        max_value=36500,
        required=False,
        allow_null=True,
        help_text="days kept after it was stored; null: the kind's default from settings",
    )

    def validate(self, data):
        given = {name: value for name, value in data.items() if name in self.initial_data}
        if not given:
            raise serializers.ValidationError("Give legal_hold and/or retention_days.")
        return given


class RecordingFilterIn(serializers.Serializer):
    session_id = serializers.CharField(max_length=200, required=False)
    agent_id = serializers.CharField(max_length=200, required=False)
    customer_id = serializers.CharField(max_length=200, required=False)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    # `from` and `to` (the seed's names) bound started_at; `from` is a Python keyword, hence vars()
    vars()["from"] = serializers.DateTimeField(required=False, help_text="started at or after")
    to = serializers.DateTimeField(required=False, help_text="started before")
    limit = limit_field(default=50, maximum=200)
    offset = offset_field()


class RecordingOut(serializers.ModelSerializer):
    recording_id = serializers.IntegerField(source="pk", read_only=True)

    class Meta:
        model = Recording
        exclude = ["id", "wrapped_key", "callback_token"]  # the token names the callback URL: never shown


class StartedOut(serializers.Serializer):
    recording_id = serializers.IntegerField()
    status = serializers.CharField()
