from django.urls import path

from monitoring import apis

urlpatterns = [
    path("alert-rules", apis.AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("alert-rules/metrics", apis.EvaluableMetricListApi.as_view(), name="alert-rule-metrics"),
    path("alert-rules/prometheus.yml", apis.PrometheusRuleFileApi.as_view(), name="alert-rule-file"),
    path("alert-rules/<int:rule_id>", apis.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
]
