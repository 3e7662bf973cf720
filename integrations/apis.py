"""Thin DRF views of the integrations API (the seed's integration service under /api/v1/integrations).

People with the ADMIN role manage the registry (API keys cannot: a leaked key must not redirect our
messages or read which credentials exist). Sending messages and reading them takes an API key with
`integrations:write`, or ADMIN; a SUPERVISOR may use the messages of payment integrations (query a
payment, refund a customer). A provider's refund methods (cancels, refunds) need a person with
SUPERVISOR or above, or a key that also has `payments:refund`; each request is audited. DELETE
deactivates: an integration's messages stay readable.

Providers that send us webhooks post to /integrations/<id>/incoming. That route takes no sign-in: its
permission is the provider's own proof (a signature over the raw body, a subscription's verify
token), checked before anything is read; a forged or unsigned request is a 403.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import ExplainedPermission, role_only, scope_or_role
from config import ratelimit
from config.errors import error_body
from integrations import providers, registry, selectors, services
from integrations.models import Integration, IntegrationType, MessageStatus, MessageType
from integrations.serializers import IntegrationIn, IntegrationOut, MessageFilterIn, MessageIn, MessageOut

CanManageIntegrations = role_only(Role.ADMIN)
# who may reach the messages routes at all; _check_caller then decides per integration and method
CanUseMessages = scope_or_role(Scope.INTEGRATIONS_WRITE, Role.SUPERVISOR)
TAGS = ["integrations"]


def _check_caller(request, integration: Integration, method: str | None = None) -> None:
    """Below ADMIN, a person reaches only payment integrations' messages; a refund method needs a
    person with SUPERVISOR or above, or a key with payments:refund too. PermissionDenied says which."""
    user = request.user
    is_key = hasattr(user, "has_scope")
    if not is_key and not user.has_role(Role.ADMIN) and integration.type != IntegrationType.PAYMENT:
        raise PermissionDenied("This needs the ADMIN role or higher (SUPERVISOR reaches payment integrations only).")
    refunds = providers.get(integration.provider).refund_methods
    if method in refunds and is_key and not user.has_scope(Scope.PAYMENTS_REFUND):
        raise PermissionDenied(f"{method} moves money back: this API key lacks the '{Scope.PAYMENTS_REFUND}' scope.")


def _integration_for(request, integration_id: str, method: str | None = None) -> Integration:
    integration = selectors.integration_get(integration_id)
    _check_caller(request, integration, method)
    return integration


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
    permission_classes = [CanUseMessages]

    @extend_schema(
        summary="List an integration's messages (?status=pending|sending|delivered|failed|dead)",
        tags=TAGS,
        parameters=[MessageFilterIn],
        responses=MessageOut(many=True),
    )
    def get(self, request, integration_id: str):
        integration = _integration_for(request, integration_id)
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
        integration = _integration_for(request, integration_id)
        body = MessageIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        payload = data["payload"]
        _check_caller(request, integration, payload.get("method") if isinstance(payload, dict) else None)
        key = data.get("idempotency_key") or ""
        if data["message_type"] == MessageType.ASYNC:
            message, created = services.send_async(integration, payload, idempotency_key=key, actor=request.user)
            return Response(MessageOut(message).data, status=status.HTTP_202_ACCEPTED if created else 200)
        try:
            message, created = services.send_sync(integration, payload, idempotency_key=key, actor=request.user)
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
    permission_classes = [CanUseMessages]

    @extend_schema(summary="Read a message and every delivery attempt", tags=TAGS, responses=MessageOut)
    def get(self, request, integration_id: str, message_id: int):
        message = selectors.message_get(_integration_for(request, integration_id), message_id)
        return Response(MessageOut(message, context={"with_attempts": True}).data)


class MessageReplayApi(APIView):
    permission_classes = [CanUseMessages]

    @extend_schema(
        summary="Replay a failed or dead-lettered message (a fresh round of attempts)",
        tags=TAGS,
        request=None,
        responses={202: MessageOut},
    )
    def post(self, request, integration_id: str, message_id: int):
        integration = selectors.integration_get(integration_id)
        message = selectors.message_get(integration, message_id)
        _check_caller(request, integration, message.method)  # a replayed refund is a refund
        message = services.replay(message, actor=request.user)
        return Response(MessageOut(message).data, status=status.HTTP_202_ACCEPTED)


class SignedByProvider(ExplainedPermission):
    """The permission of the webhook route: the integration exists, is active, takes webhooks, and its
    provider proves the request is its own (verify_incoming over the raw body). One refusal text for
    every failure, so a prober learns nothing about which integrations exist."""

    message = "This webhook is not signed by the integration's provider (or no such webhook exists)."

    def has_permission(self, request, view) -> bool:
        integration = selectors.active_integration_or_none(view.kwargs.get("integration_id", ""))
        if integration is None:
            return False
        provider = providers.get(integration.provider)
        if not provider.accepts_incoming:
            return False
        # bounded before any check: a check may query the provider (Toss), and a flood must not
        # turn into as many outbound calls
        rate = float(settings.INCOMING_WEBHOOK_RATE_PER_SECOND)
        wait = ratelimit.take(f"oncall:incoming-rate:{integration.pk}", rate=rate, capacity=rate)
        if wait > 0:
            raise Throttled(wait=wait, detail="Too many webhooks for this integration; send them again later.")
        incoming = providers.Incoming(
            method=request.method,
            headers={name.lower(): value for name, value in request.headers.items()},
            query={name: request.query_params.get(name) for name in request.query_params},
            body=request.body,
            received_at=timezone.now(),
        )
        try:
            verified = provider.verify_incoming(integration, incoming)
        except Exception:  # a malformed signature header must be a 403, never a 500
            verified = False
        if verified:
            view.verified = (integration, provider, incoming)
        return verified


class IncomingWebhookApi(APIView):
    """Webhooks from a provider (Toss payment status, Meta messages, X activity): verified, then handed
    to the provider's receive(), which records what came idempotently."""

    authentication_classes: list = []
    permission_classes = [SignedByProvider]

    @extend_schema(
        summary="A provider's subscription challenge (Meta's hub.challenge, X's CRC)",
        tags=TAGS,
        responses={200: OpenApiTypes.STR, 403: OpenApiTypes.OBJECT},
    )
    def get(self, request, integration_id: str):
        return self._receive()

    @extend_schema(
        summary="A provider's webhook, verified by its signature",
        tags=TAGS,
        request=OpenApiTypes.BINARY,
        responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT},
    )
    def post(self, request, integration_id: str):
        return self._receive()

    def _receive(self):
        integration, provider, incoming = self.verified
        answer = provider.receive(integration, incoming)
        if isinstance(answer.body, dict | list):
            return JsonResponse(answer.body, status=answer.status, safe=False)
        return HttpResponse(answer.body or "", status=answer.status, content_type="text/plain; charset=utf-8")
