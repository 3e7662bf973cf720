"""Thin DRF views of the integrations API (the seed's integration service under /api/v1/integrations).

People with the ADMIN role manage the registry (API keys cannot: a leaked key must not redirect our
messages or read which credentials exist). Sending messages and reading them takes an API key with
`integrations:write`, or ADMIN. DELETE deactivates: an integration's messages stay readable.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import role_only, scope_or_role
from config.errors import error_body
from integrations import registry, selectors, services
from integrations.models import MessageStatus, MessageType
from integrations.serializers import IntegrationIn, IntegrationOut, MessageFilterIn, MessageIn, MessageOut

CanManageIntegrations = role_only(Role.ADMIN)
CanSendMessages = scope_or_role(Scope.INTEGRATIONS_WRITE, Role.ADMIN)
TAGS = ["integrations"]


class IntegrationListApi(APIView):
    permission_classes = [CanManageIntegrations]

    @extend_schema(summary="List integrations (credentials masked)", tags=TAGS, responses=IntegrationOut(many=True))
    def get(self, request):
        return Response({"results": IntegrationOut(selectors.integration_list(), many=True).data})

    @extend_schema(summary="Register an integration", tags=TAGS, request=IntegrationIn, responses={201: IntegrationOut})
    def post(self, request):
        body = IntegrationIn(data=request.data)
        body.is_valid(raise_exception=True)
        integration = registry.create_integration(body.validated_data, actor=request.user)
        return Response(IntegrationOut(integration).data, status=status.HTTP_201_CREATED)


class IntegrationDetailApi(APIView):
    permission_classes = [CanManageIntegrations]

    @extend_schema(summary="Read an integration (credentials masked)", tags=TAGS, responses=IntegrationOut)
    def get(self, request, integration_id: str):
        return Response(IntegrationOut(selectors.integration_get(integration_id)).data)

    @extend_schema(
        summary="Change an integration (auth_config keys merge; null removes one; active=false deactivates)",
        tags=TAGS,
        request=IntegrationIn,
        responses=IntegrationOut,
    )
    def patch(self, request, integration_id: str):
        integration = selectors.integration_get(integration_id)
        body = IntegrationIn(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        integration = registry.update_integration(integration, body.validated_data, actor=request.user)
        return Response(IntegrationOut(integration).data)

    @extend_schema(summary="Deactivate an integration (its history stays)", tags=TAGS, responses=IntegrationOut)
    def delete(self, request, integration_id: str):
        integration = registry.deactivate_integration(selectors.integration_get(integration_id), actor=request.user)
        return Response(IntegrationOut(integration).data)


class MessageListApi(APIView):
    permission_classes = [CanSendMessages]

    @extend_schema(
        summary="List an integration's messages (?status=pending|sending|delivered|failed|dead)",
        tags=TAGS,
        parameters=[MessageFilterIn],
        responses=MessageOut(many=True),
    )
    def get(self, request, integration_id: str):
        integration = selectors.integration_get(integration_id)
        filters = MessageFilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        rows = selectors.message_list(integration, status=params.get("status"))
        page = rows[params["offset"] : params["offset"] + params["limit"]]
        return Response({"count": rows.count(), "results": MessageOut(page, many=True).data})

    @extend_schema(
        summary="Send a message: sync (answered now) or async (queued, retried, dead-lettered)",
        tags=TAGS,
        request=MessageIn,
        responses={200: MessageOut, 202: MessageOut, 502: OpenApiTypes.OBJECT, 504: OpenApiTypes.OBJECT},
    )
    def post(self, request, integration_id: str):
        integration = selectors.integration_get(integration_id)
        body = MessageIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = data.get("idempotency_key") or ""
        if data["message_type"] == MessageType.ASYNC:
            message, created = services.send_async(integration, data["payload"], idempotency_key=key)
            return Response(MessageOut(message).data, status=status.HTTP_202_ACCEPTED if created else 200)
        try:
            message, created = services.send_sync(integration, data["payload"], idempotency_key=key)
        except (services.RateLimited, services.CircuitOpen) as exc:
            response = Response(error_body(exc.code, exc.message), status=exc.status_code)
            response["Retry-After"] = str(exc.retry_after)
            return response
        if created and message.status == MessageStatus.FAILED:
            timed_out = getattr(message, "timed_out", False)
            code, answer = ("provider_timeout", 504) if timed_out else ("provider_error", 502)
            return Response(error_body(code, message.last_error, {"message_id": message.pk}), status=answer)
        return Response(MessageOut(message).data)


class MessageDetailApi(APIView):
    permission_classes = [CanSendMessages]

    @extend_schema(summary="Read a message and every delivery attempt", tags=TAGS, responses=MessageOut)
    def get(self, request, integration_id: str, message_id: int):
        message = selectors.message_get(selectors.integration_get(integration_id), message_id)
        return Response(MessageOut(message, context={"with_attempts": True}).data)


class MessageReplayApi(APIView):
    permission_classes = [CanSendMessages]

    @extend_schema(
        summary="Replay a failed or dead-lettered message (a fresh round of attempts)",
        tags=TAGS,
        request=None,
        responses={202: MessageOut},
    )
    def post(self, request, integration_id: str, message_id: int):
        message = selectors.message_get(selectors.integration_get(integration_id), message_id)
        message = services.replay(message)
        return Response(MessageOut(message).data, status=status.HTTP_202_ACCEPTED)
