"""Managing people, API keys and the audit log through the API: ADMIN and above, people only."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import APIKey, AuditEvent, Role, User
from accounts.permissions import role_only
from accounts.serializers import (
    APIKeyCreatedOut,
    APIKeyIn,
    APIKeyOut,
    AuditEventOut,
    AuditFilterIn,
    UserOut,
    UserUpdateIn,
)
from accounts.services import clear_lockout, create_api_key, revoke_api_key, update_user
from config.errors import NotFound

AdminsOnly = role_only(Role.ADMIN)


def _get(model, pk: int, label: str):
    found = model.objects.filter(pk=pk).first()
    if found is None:
        raise NotFound(f"{label} {pk} does not exist.")
    return found


class UserListApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(summary="List people", tags=["users"], responses=UserOut(many=True))
    def get(self, request):
        return Response(UserOut(User.objects.order_by("username"), many=True).data)


class UserDetailApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(summary="Read a person", tags=["users"], responses=UserOut)
    def get(self, request, user_id: int):
        return Response(UserOut(_get(User, user_id, "User")).data)

    @extend_schema(
        summary="Change a person's role or active flag", tags=["users"], request=UserUpdateIn, responses=UserOut
    )
    def patch(self, request, user_id: int):
        serializer = UserUpdateIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = update_user(_get(User, user_id, "User"), actor=request.user, **serializer.validated_data)
        return Response(UserOut(user).data)


class UserUnlockApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(summary="Clear a person's sign-in lockout", tags=["users"], request=None, responses={204: None})
    def post(self, request, user_id: int):
        clear_lockout(_get(User, user_id, "User").username, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class APIKeyListApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(summary="List API keys", tags=["api-keys"], responses=APIKeyOut(many=True))
    def get(self, request):
        return Response(APIKeyOut(APIKey.objects.all(), many=True).data)

    @extend_schema(
        summary="Create an API key (shown once, in this answer)",
        tags=["api-keys"],
        request=APIKeyIn,
        responses={201: APIKeyCreatedOut},
    )
    def post(self, request):
        serializer = APIKeyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = create_api_key(created_by=request.user, **serializer.validated_data)
        body = APIKeyOut(api_key).data | {"key": raw_key}
        return Response(body, status=status.HTTP_201_CREATED)


class APIKeyRevokeApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(summary="Revoke an API key", tags=["api-keys"], request=None, responses=APIKeyOut)
    def post(self, request, key_id: int):
        return Response(APIKeyOut(revoke_api_key(_get(APIKey, key_id, "API key"), actor=request.user)).data)


class AuditEventListApi(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(
        summary="Read the audit log", tags=["audit"], parameters=[AuditFilterIn], responses=AuditEventOut(many=True)
    )
    def get(self, request):
        filters = AuditFilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        events = AuditEvent.objects.all()
        if params.get("action"):
            events = events.filter(action=params["action"])
        if params.get("actor"):
            events = events.filter(Q(actor__icontains=params["actor"]))
        page = events[params["offset"] : params["offset"] + params["limit"]]
        return Response({"count": events.count(), "results": AuditEventOut(page, many=True).data})
