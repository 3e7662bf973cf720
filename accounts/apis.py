"""The accounts API for people: sign in, refresh, sign out, who am I, sessions, MFA, sign-up."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import mfa, sessions
from accounts.models import LoginSession, Role
from accounts.permissions import IsAuthenticatedPrincipal, IsPerson, role_only
from accounts.serializers import (
    LoginIn,
    LoginOut,
    MFAEnrolOut,
    MFATokenIn,
    RecoveryCodesOut,
    RefreshIn,
    RegisterIn,
    SessionOut,
    TokensOut,
    UserOut,
)
from accounts.services import register_user
from accounts.throttles import (
    LoginPerAddressThrottle,
    LoginPerUsernameThrottle,
    RefreshPerAddressThrottle,
    RefreshPerUserThrottle,
)
from config.errors import NotFound
from config.permissions import Public


def _valid(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class LoginApi(APIView):
    permission_classes = [Public]
    authentication_classes = []
    throttle_classes = [LoginPerAddressThrottle, LoginPerUsernameThrottle]

    @extend_schema(
        summary="Sign in (username, password, MFA code) for a token pair",
        tags=["auth"],
        request=LoginIn,
        responses=LoginOut,
    )
    def post(self, request):
        data = _valid(LoginIn, request)
        tokens = sessions.login(request=request._request, **data)
        return Response(
            {
                "access_token": tokens.access,
                "refresh_token": tokens.refresh,
                "token_type": "Bearer",
                "mfa_pending": tokens.mfa_pending,
                "user": UserOut(tokens.user).data,
            }
        )


class RefreshApi(APIView):
    permission_classes = [Public]
    authentication_classes = []
    throttle_classes = [RefreshPerAddressThrottle, RefreshPerUserThrottle]

    @extend_schema(summary="Swap a refresh token for a new pair", tags=["auth"], request=RefreshIn, responses=TokensOut)
    def post(self, request):
        access, refresh = sessions.refresh(_valid(RefreshIn, request)["refresh_token"])
        return Response({"access_token": access, "refresh_token": refresh})


class LogoutApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        summary="Sign out: end this session and its tokens", tags=["auth"], request=RefreshIn, responses={204: None}
    )
    def post(self, request):
        sessions.logout(user=request.user, raw_refresh=_valid(RefreshIn, request)["refresh_token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsAuthenticatedPrincipal]

    @extend_schema(
        summary="Who the credentials belong to",
        tags=["auth"],
        responses=inline_serializer(
            "Me",
            {
                "kind": serializers.CharField(),
                "username": serializers.CharField(),
                "role": serializers.CharField(allow_null=True),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "mfa_enabled": serializers.BooleanField(),
                "mfa_pending": serializers.BooleanField(),
            },
        ),
    )
    def get(self, request):
        user = request.user
        if hasattr(user, "api_key"):
            return Response(
                {
                    "kind": "api_key",
                    "username": user.username,
                    "role": None,
                    "scopes": user.api_key.scopes,
                    "mfa_enabled": False,
                    "mfa_pending": False,
                }
            )
        return Response(
            {
                "kind": "user",
                "username": user.username,
                "role": user.role,
                "scopes": [],
                "mfa_enabled": mfa.is_enabled(user),
                "mfa_pending": getattr(user, "mfa_pending", False),
            }
        )


class SessionListApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(summary="List one's own active sign-ins", tags=["auth"], responses=SessionOut(many=True))
    def get(self, request):
        active = LoginSession.objects.filter(user=request.user, ended_at__isnull=True)
        current = getattr(getattr(request.user, "login_session", None), "pk", None)
        return Response(SessionOut(active, many=True, context={"current_session_id": current}).data)


class SessionDetailApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(summary="End one of one's own sign-ins", tags=["auth"], request=None, responses={204: None})
    def delete(self, request, session_id: int):
        session = LoginSession.objects.filter(pk=session_id, user=request.user, ended_at__isnull=True).first()
        if session is None:
            raise NotFound(f"You have no active session {session_id}.")
        sessions.end_session(session, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MFAEnrolApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        summary="Start TOTP enrolment (provisioning URI)", tags=["auth"], request=None, responses=MFAEnrolOut
    )
    def post(self, request):
        secret, uri = mfa.enrol(request.user)
        return Response({"secret": secret, "provisioning_uri": uri})


class MFAConfirmApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        summary="Confirm TOTP enrolment with a code (returns recovery codes)",
        tags=["auth"],
        request=MFATokenIn,
        responses=RecoveryCodesOut,
    )
    def post(self, request):
        codes = mfa.confirm(request.user, _valid(MFATokenIn, request)["token"])
        sessions.mark_mfa_verified(request.user)
        return Response({"recovery_codes": codes})


class MFADisableApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(summary="Turn MFA off (needs a code)", tags=["auth"], request=MFATokenIn, responses={204: None})
    def post(self, request):
        mfa.disable(request.user, _valid(MFATokenIn, request)["token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MFARecoveryCodesApi(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        summary="Make new recovery codes (needs a code)", tags=["auth"], request=MFATokenIn, responses=RecoveryCodesOut
    )
    def post(self, request):
        return Response(
            {"recovery_codes": mfa.regenerate_recovery_codes(request.user, _valid(MFATokenIn, request)["token"])}
        )


class CanRegister(BasePermission):
    """Open sign-up (VIEWER only) when OPEN_SIGNUP is on; otherwise ADMIN and above."""

    def has_permission(self, request, view) -> bool:
        if settings.OPEN_SIGNUP:
            return True
        check = role_only(Role.ADMIN)()
        allowed = check.has_permission(request, view)
        self.message = check.message
        return allowed


class RegisterApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(summary="Create a person", tags=["users"], request=RegisterIn, responses={201: UserOut})
    def post(self, request):
        data = _valid(RegisterIn, request)
        actor = request.user if request.user.is_authenticated and not hasattr(request.user, "has_scope") else None
        if actor is None:
            data["role"] = Role.VIEWER  # open sign-up never grants more
        user = register_user(actor=actor, **data)
        return Response(UserOut(user).data, status=status.HTTP_201_CREATED)
