"""Thin DRF views for alert rules: viewers read, supervisors and `policies:write` keys change them."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import read_write
from monitoring import rule_file, selectors, services
from monitoring.serializers import AlertRuleIn, AlertRuleOut, EvaluableMetricOut
from monitoring.sources import evaluable_metrics

CanManageRules = read_write(Scope.INCIDENTS_READ, Role.VIEWER, Scope.POLICIES_WRITE, Role.SUPERVISOR)
TAGS = ["monitoring"]


class AlertRuleListApi(APIView):
    permission_classes = [CanManageRules]

    @extend_schema(
        tags=TAGS, summary="List alert rules and the state of each series", responses=AlertRuleOut(many=True)
    )
    def get(self, request):
        return Response(AlertRuleOut(selectors.rule_list().order_by("rule_name", "pk"), many=True).data)

    @extend_schema(tags=TAGS, summary="Create an alert rule", request=AlertRuleIn, responses={201: AlertRuleOut})
    def post(self, request):
        serializer = AlertRuleIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = services.create_rule(actor=request.user, **serializer.validated_data)
        return Response(AlertRuleOut(selectors.rule_detail(rule.pk)).data, status=status.HTTP_201_CREATED)


class AlertRuleDetailApi(APIView):
    permission_classes = [CanManageRules]

    @extend_schema(tags=TAGS, summary="Read an alert rule", responses=AlertRuleOut)
    def get(self, request, rule_id: int):
        return Response(AlertRuleOut(selectors.rule_detail(rule_id)).data)

    @extend_schema(tags=TAGS, summary="Change an alert rule", request=AlertRuleIn(partial=True), responses=AlertRuleOut)
    def patch(self, request, rule_id: int):
        rule = selectors.rule_detail(rule_id)
        serializer = AlertRuleIn(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_rule(rule, actor=request.user, **serializer.validated_data)
        return Response(AlertRuleOut(selectors.rule_detail(rule_id)).data)

    @extend_schema(tags=TAGS, summary="Delete an alert rule (what it fired is resolved)", responses={204: None})
    def delete(self, request, rule_id: int):
        services.delete_rule(selectors.rule_detail(rule_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EvaluableMetricListApi(APIView):
    permission_classes = [CanManageRules]

    @extend_schema(tags=TAGS, summary="Metrics an alert rule may watch", responses=EvaluableMetricOut(many=True))
    def get(self, request):
        metrics = sorted(evaluable_metrics().values(), key=lambda metric: metric.name)
        return Response(EvaluableMetricOut(metrics, many=True).data)


class PrometheusRuleFileApi(APIView):
    permission_classes = [CanManageRules]

    @extend_schema(
        tags=TAGS,
        summary="The enabled rules as a Prometheus rule file (YAML)",
        responses={(200, "text/yaml"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request):
        body = rule_file.render(selectors.enabled_rules())
        return HttpResponse(body, content_type="text/yaml; charset=utf-8")
