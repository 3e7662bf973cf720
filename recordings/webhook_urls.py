from django.urls import path

from recordings import webhooks

urlpatterns = [
    path("twilio/recording/<str:token>", webhooks.twilio_recording, name="twilio-recording"),
    path("vonage/recording/<str:token>", webhooks.vonage_recording, name="vonage-recording"),
]
