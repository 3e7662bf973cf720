"""`Authorization: Api-Key <key>` for monitoring systems and other machines."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts import mfa
from accounts.models import APIKey, LoginSession
from accounts.selectors import APIKeyRejected, api_key_from_secret
from accounts.services import record_api_key_use


class APIKeyPrincipal:
    """`request.user` for a request made with an API key: authenticated, with scopes and no role."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: APIKey):
        self.api_key = api_key
        self.username = f"api-key:{api_key.name}"

    def __str__(self) -> str:
        return self.username

    def has_scope(self, scope: str) -> bool:
        return self.api_key.has_scope(scope)

    def has_role(self, minimum: str) -> bool:
        return False


class APIKeyAuthentication(BaseAuthentication):
    keyword = "api-key"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Api-Key <key>'.")
        try:
            raw_key = header[1].decode("ascii")
            api_key = api_key_from_secret(raw_key)
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Invalid API key.") from exc
        except APIKeyRejected as exc:
            raise AuthenticationFailed(str(exc)) from exc
        record_api_key_use(api_key)
        return APIKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return 'Api-Key realm="api"'


class SessionJWTAuthentication(JWTAuthentication):
    """Bearer JWTs that die with their login session, and that carry whether MFA is still owed.

    The session id (`sid`) is a claim: ending the session (logout, "sign out that device") refuses
    its access token at once, not when it expires. `user.mfa_pending` is True for a role that must
    use MFA when this session did not prove it: such a user may only enrol (see permissions).
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        session = LoginSession.objects.filter(pk=token.get("sid"), user=user, ended_at__isnull=True).first()
        if session is None:
            raise AuthenticationFailed("This session has ended; sign in again.", code="session_ended")
        user.login_session = session
        user.mfa_pending = mfa.is_required(user) and not session.mfa_verified
        return user, token
