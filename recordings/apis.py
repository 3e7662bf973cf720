"""Thin DRF views of the recordings API (the seed's recording service under /api/v1/recordings).

VIEWER and up (or recordings:read) read metadata; SUPERVISOR and up (or recordings:read) download,
and every download is audited; AGENT and up (or recordings:write) record.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import role_only, scope_or_role
from config.errors import InvalidInput
from recordings import compliance, downloads, selectors, services
from recordings.serializers import (
    ChangeRecordingIn,
    ChatMessageIn,
    OpenChatIn,
    RecordingFilterIn,
    RecordingOut,
    StartedOut,
    StartVoiceIn,
)
from recordings.storage import StorageError

CanReadRecordings = scope_or_role(Scope.RECORDINGS_READ, Role.VIEWER)
CanDownloadRecordings = scope_or_role(Scope.RECORDINGS_READ, Role.SUPERVISOR)
CanRecord = scope_or_role(Scope.RECORDINGS_WRITE, Role.AGENT)
# legal hold and retention: a compliance decision, made by a signed-in ADMIN (never an API key)
CanKeep = role_only(Role.ADMIN)
TAGS = ["recordings"]


def _started(recording) -> Response:
    return Response({"recording_id": recording.pk, "status": recording.status}, status=status.HTTP_201_CREATED)


class RecordingListApi(APIView):
    permission_classes = [CanReadRecordings]

    @extend_schema(
        summary="List recordings (filters: session, agent, customer, kind, from/to)",
        tags=TAGS,
        parameters=[RecordingFilterIn],
        responses=RecordingOut(many=True),
    )
    def get(self, request):
        filters = RecordingFilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        rows = selectors.recording_list(
            session_id=params.get("session_id"),
            agent_id=params.get("agent_id"),
            customer_id=params.get("customer_id"),
            kind=params.get("kind"),
            started_from=params.get("from"),
            started_to=params.get("to"),
        )
        page = rows[params["offset"] : params["offset"] + params["limit"]]
        return Response({"count": rows.count(), "results": RecordingOut(page, many=True).data})


class RecordingDetailApi(APIView):
    permission_classes = [CanReadRecordings]

    def get_permissions(self):
        return [CanKeep()] if self.request.method == "PATCH" else super().get_permissions()

    @extend_schema(summary="Read a recording's metadata", tags=TAGS, responses=RecordingOut)
    def get(self, request, recording_id: int):
        return Response(RecordingOut(selectors.recording_get(recording_id)).data)

    @extend_schema(
        summary="Place or lift a legal hold, or change how long the recording is kept (ADMIN; audited)",
        tags=TAGS,
        request=ChangeRecordingIn,
        responses=RecordingOut,
    )
    def patch(self, request, recording_id: int):
        body = ChangeRecordingIn(data=request.data)
        body.is_valid(raise_exception=True)
        recording = compliance.change_retention(recording_id, **body.validated_data, actor=request.user)
        return Response(RecordingOut(recording).data)


class VoiceStartApi(APIView):
    permission_classes = [CanRecord]

    @extend_schema(
        summary="Open a voice recording (then upload its audio and stop)",
        tags=TAGS,
        request=StartVoiceIn,
        responses={201: StartedOut},
    )
    def post(self, request):
        body = StartVoiceIn(data=request.data)
        body.is_valid(raise_exception=True)
        return _started(services.start_voice(**body.validated_data))


class RecordingAudioApi(APIView):
    """The body is the audio file (Content-Length required), or a multipart form with `file`."""

    permission_classes = [CanRecord]
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Upload the audio of an open voice recording (WAV, MP3, FLAC or AAC; raw body or multipart)",
        tags=TAGS,
        request={"application/octet-stream": OpenApiTypes.BINARY, "multipart/form-data": OpenApiTypes.OBJECT},
        responses=RecordingOut,
    )
    def put(self, request, recording_id: int):
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.RECORDINGS_MAX_UPLOAD_BYTES + 64 * 1024:  # room for multipart framing
            raise services.UploadTooLarge(services.too_large_message())
        try:
            if request.content_type.startswith("multipart/form-data"):
                upload = request.FILES.get("file")
                if upload is None:
                    raise InvalidInput(
                        "The multipart form has no 'file' part.", fields={"file": "This field is required."}
                    )
                with upload.open("rb") as source:
                    recording = services.upload_audio(recording_id, source)
            else:
                recording = services.upload_audio(recording_id, request.stream or _Empty())
        except StorageError as exc:  # the store or the key service did not answer; nothing was kept
            raise selectors.StoreUnavailable(f"The audio was not stored: {exc}. Send it again shortly.") from exc
        return Response(RecordingOut(recording).data)


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""


class VoiceStopApi(APIView):
    permission_classes = [CanRecord]

    @extend_schema(
        summary="Stop a voice recording: a worker transcodes, encrypts and stores it",
        tags=TAGS,
        request=None,
        responses={202: RecordingOut},
    )
    def post(self, request, recording_id: int):
        recording = services.stop_voice(recording_id)
        return Response(RecordingOut(recording).data, status=status.HTTP_202_ACCEPTED)


class ChatOpenApi(APIView):
    permission_classes = [CanRecord]

    @extend_schema(summary="Open a chat log", tags=TAGS, request=OpenChatIn, responses={201: StartedOut})
    def post(self, request):
        body = OpenChatIn(data=request.data)
        body.is_valid(raise_exception=True)
        return _started(services.open_chat(**body.validated_data))


class ChatMessageApi(APIView):
    permission_classes = [CanRecord]

    @extend_schema(
        summary="Append a message to an open chat",
        tags=TAGS,
        request=ChatMessageIn,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request, recording_id: int):
        body = ChatMessageIn(data=request.data)
        body.is_valid(raise_exception=True)
        message = services.append_chat_message(recording_id, **body.validated_data)
        return Response({"message_id": message.pk, "recording_id": recording_id}, status=status.HTTP_201_CREATED)


class ChatCloseApi(APIView):
    permission_classes = [CanRecord]

    @extend_schema(
        summary="Close a chat: a worker stores its log as gzip JSON, encrypted",
        tags=TAGS,
        request=None,
        responses={202: RecordingOut},
    )
    def post(self, request, recording_id: int):
        recording = services.close_chat(recording_id)
        return Response(RecordingOut(recording).data, status=status.HTTP_202_ACCEPTED)


class RecordingDownloadApi(APIView):
    permission_classes = [CanDownloadRecordings]

    @extend_schema(
        summary="Download the decrypted recording (Range supported; audited)",
        tags=TAGS,
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, recording_id: int):
        return downloads.audited_response(request.user, recording_id, request.headers.get("Range"))
