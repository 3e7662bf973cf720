"""Accounts API: who am I (a person or a system)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAuthenticatedPrincipal


class MeApi(APIView):
    permission_classes = [IsAuthenticatedPrincipal]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "kind": serializers.CharField(),
                "username": serializers.CharField(),
                "role": serializers.CharField(allow_null=True),
                "scopes": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        user = request.user
        if hasattr(user, "api_key"):
            return Response({"kind": "api_key", "username": user.username, "role": None, "scopes": user.api_key.scopes})
        return Response({"kind": "user", "username": user.username, "role": user.role, "scopes": []})
