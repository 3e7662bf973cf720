from django.urls import path

from accounts.apis import MeApi

urlpatterns = [
    path("auth/me", MeApi.as_view(), name="auth-me"),
]
