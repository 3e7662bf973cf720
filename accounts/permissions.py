"""Who may call what: API keys by scope, people by role (roles are ordered, see Role.rank).

A person whose role requires MFA and who has not proved it in this session (`mfa_pending`) is
refused everywhere but their own account and MFA endpoints.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

NOT_SIGNED_IN_MESSAGE = "Authentication credentials were not provided or are invalid."
MFA_PENDING_MESSAGE = (
    "Your role requires MFA: enrol at POST /api/v1/auth/mfa/enrol and confirm, or sign in with your code."
)


class ExplainedPermission(BasePermission):
    """A permission that always has a `message`: DRF shows it on a refusal, and wrapping permissions
    (read/write, the seed's endpoints, open sign-up) copy it. Before a check sets a more precise one,
    the refusal is the anonymous caller's."""

    message = NOT_SIGNED_IN_MESSAGE


def _person_has_role(permission: BasePermission, user, role: str) -> bool:
    if getattr(user, "mfa_pending", False):
        permission.message = MFA_PENDING_MESSAGE
        return False
    permission.message = f"This needs the {role} role or higher."
    return user.has_role(role)


def scope_or_role(scope: str, role: str) -> type[BasePermission]:
    """A permission class: an API key needs `scope`; a signed-in person needs at least `role`."""

    class ScopeOrRole(ExplainedPermission):
        required_scope = scope
        minimum_role = role

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not user or not user.is_authenticated:
                return False
            if hasattr(user, "has_scope"):
                self.message = f"This API key lacks the '{scope}' scope."
                return user.has_scope(scope)
            return _person_has_role(self, user, role)

    ScopeOrRole.__name__ = f"ScopeOrRole[{scope}|{role}]"
    return ScopeOrRole


def role_only(role: str) -> type[BasePermission]:
    """People with at least `role`; API keys are refused (a leaked key must not manage accounts)."""

    class RoleOnly(ExplainedPermission):
        minimum_role = role

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not user or not user.is_authenticated:
                return False
            if hasattr(user, "has_scope"):
                self.message = "API keys cannot do this; sign in as a person."
                return False
            return _person_has_role(self, user, role)

    RoleOnly.__name__ = f"RoleOnly[{role}]"
    return RoleOnly


def read_write(read_scope: str, read_role: str, write_scope: str, write_role: str) -> type[BasePermission]:
    """Safe methods need the read scope/role, the rest the write scope/role."""
    read_permission, write_permission = scope_or_role(read_scope, read_role), scope_or_role(write_scope, write_role)

    class ReadWrite(ExplainedPermission):
        def has_permission(self, request, view) -> bool:
            chosen = read_permission() if request.method in SAFE_METHODS else write_permission()
            allowed = chosen.has_permission(request, view)
            self.message = chosen.message
            return allowed

    ReadWrite.__name__ = f"ReadWrite[{read_scope}|{write_scope}]"
    return ReadWrite


class IsAuthenticatedPrincipal(ExplainedPermission):
    """Any authenticated caller, person or system: for endpoints about the caller itself."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class IsPerson(ExplainedPermission):
    """A signed-in person (any role, MFA pending allowed): their own account, sessions and MFA."""

    message = "Sign in as a person (API keys have no account, sessions or MFA)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not hasattr(user, "has_scope"))
