from django.urls import path

from orchestrator import twilio_webhooks, vonage_webhooks

urlpatterns = [
    path("twilio/voice/<str:token>", twilio_webhooks.voice, name="twilio-voice"),
    path("twilio/gather/<str:token>", twilio_webhooks.gather, name="twilio-gather"),
    path("twilio/status/<str:token>", twilio_webhooks.status, name="twilio-status"),
    path("twilio/amd/<str:token>", twilio_webhooks.machine_detection, name="twilio-amd"),
    path("vonage/event/<str:token>", vonage_webhooks.event, name="vonage-event"),
    path("vonage/input/<str:token>", vonage_webhooks.user_input, name="vonage-input"),
]
