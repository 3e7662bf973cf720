from django.urls import path

from accounts import admin_apis, apis

urlpatterns = [
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", apis.MeApi.as_view(), name="auth-me"),
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/sessions", apis.SessionListApi.as_view(), name="auth-sessions"),
    path("auth/sessions/<int:session_id>", apis.SessionDetailApi.as_view(), name="auth-session"),
    path("auth/mfa/enrol", apis.MFAEnrolApi.as_view(), name="mfa-enrol"),
    path("auth/mfa/confirm", apis.MFAConfirmApi.as_view(), name="mfa-confirm"),
    path("auth/mfa/disable", apis.MFADisableApi.as_view(), name="mfa-disable"),
    path("auth/mfa/recovery-codes", apis.MFARecoveryCodesApi.as_view(), name="mfa-recovery-codes"),
    path("users", admin_apis.UserListApi.as_view(), name="user-list"),
    path("users/<int:user_id>", admin_apis.UserDetailApi.as_view(), name="user-detail"),
    path("users/<int:user_id>/unlock", admin_apis.UserUnlockApi.as_view(), name="user-unlock"),
    path("api-keys", admin_apis.APIKeyListApi.as_view(), name="api-key-list"),
    path("api-keys/<int:key_id>/revoke", admin_apis.APIKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("audit-events", admin_apis.AuditEventListApi.as_view(), name="audit-event-list"),
]
