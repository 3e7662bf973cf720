from django.http import JsonResponse


def server_error(request, *args, **kwargs):
    message = "Internal server error; the X-Request-ID header identifies it in the logs."
    return JsonResponse({"error": {"code": "server_error", "message": message, "fields": {}}}, status=500)
