from django.urls import path

from integrations import apis

urlpatterns = [
    path("integrations", apis.IntegrationListApi.as_view(), name="integration-list"),
    path("integrations/<str:integration_id>", apis.IntegrationDetailApi.as_view(), name="integration-detail"),
    path("integrations/<str:integration_id>/incoming", apis.IncomingWebhookApi.as_view(), name="integration-incoming"),
    path("integrations/<str:integration_id>/messages", apis.MessageListApi.as_view(), name="integration-messages"),
    path(
        "integrations/<str:integration_id>/messages/<int:message_id>",
        apis.MessageDetailApi.as_view(),
        name="integration-message",
    ),
    path(
        "integrations/<str:integration_id>/messages/<int:message_id>/replay",
        apis.MessageReplayApi.as_view(),
        name="integration-message-replay",
    ),
]
