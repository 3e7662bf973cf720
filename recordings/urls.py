from django.urls import path

from recordings import apis

urlpatterns = [
    path("recordings", apis.RecordingListApi.as_view(), name="recording-list"),
    path("recordings/voice/start", apis.VoiceStartApi.as_view(), name="recording-voice-start"),
    path("recordings/voice/<int:recording_id>/stop", apis.VoiceStopApi.as_view(), name="recording-voice-stop"),
    path("recordings/chat", apis.ChatOpenApi.as_view(), name="recording-chat-open"),
    path("recordings/chat/<int:recording_id>/messages", apis.ChatMessageApi.as_view(), name="recording-chat-message"),
    path("recordings/chat/<int:recording_id>/close", apis.ChatCloseApi.as_view(), name="recording-chat-close"),
    path("recordings/<int:recording_id>", apis.RecordingDetailApi.as_view(), name="recording-detail"),
    path("recordings/<int:recording_id>/audio", apis.RecordingAudioApi.as_view(), name="recording-audio"),
    path("recordings/<int:recording_id>/download", apis.RecordingDownloadApi.as_view(), name="recording-download"),
]
