"""Input and output shapes of the accounts API. Secrets appear only in responses that create them."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import APIKey, AuditEvent, LoginSession, Role, Scope, User
from config.pagination import offset_field


class LoginIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    mfa_token = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class UserOut(serializers.ModelSerializer):
    mfa_enabled = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_active", "mfa_enabled", "last_login", "date_joined"]

    def get_mfa_enabled(self, user: User) -> bool:
        from accounts import mfa

        return mfa.is_enabled(user)


class LoginOut(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    mfa_pending = serializers.BooleanField(help_text="true: your role requires MFA; enrol before anything else")
    user = UserOut()


class RefreshIn(serializers.Serializer):
    refresh_token = serializers.CharField()


class TokensOut(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()


class SessionOut(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = LoginSession
        fields = ["id", "created_at", "last_refreshed_at", "ip", "user_agent", "mfa_verified", "current"]

    def get_current(self, session: LoginSession) -> bool:
        current = self.context.get("current_session_id")
        return current is not None and session.pk == current


class RegisterIn(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$", help_text="3-150 letters, digits and @.+-_")
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices, required=False, default=Role.VIEWER)


class UserUpdateIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class MFATokenIn(serializers.Serializer):
    token = serializers.CharField(max_length=32, help_text="a 6-digit code, or a recovery code")


class MFAEnrolOut(serializers.Serializer):
    secret = serializers.CharField()
    provisioning_uri = serializers.CharField()


class RecoveryCodesOut(serializers.Serializer):
    recovery_codes = serializers.ListField(child=serializers.CharField())


class APIKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class APIKeyOut(serializers.ModelSerializer):
    class Meta:
        model = APIKey
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]


class APIKeyCreatedOut(APIKeyOut):
    key = serializers.CharField(help_text="shown once; only a digest is stored")

    class Meta(APIKeyOut.Meta):
        fields = [*APIKeyOut.Meta.fields, "key"]


class AuditEventOut(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "action", "actor", "target", "ip", "user_agent", "data"]


class AuditFilterIn(serializers.Serializer):
    action = serializers.CharField(required=False)
    actor = serializers.CharField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, required=False, default=100)
    offset = offset_field()  # bounded: PostgreSQL's OFFSET is a bigint
