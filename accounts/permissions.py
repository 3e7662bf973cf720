"""Who may call what: API keys by scope, people by role (roles are ordered, see Role.rank)."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


def scope_or_role(scope: str, role: str) -> type[BasePermission]:
    """A permission class: an API key needs `scope`; a signed-in user needs at least `role`."""

    class ScopeOrRole(BasePermission):
        required_scope = scope
        minimum_role = role

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not user or not user.is_authenticated:
                return False
            if hasattr(user, "has_scope"):
                self.message = f"This API key lacks the '{scope}' scope."
                return user.has_scope(scope)
            self.message = f"This needs the {role} role or higher."
            return user.has_role(role)

    ScopeOrRole.__name__ = f"ScopeOrRole[{scope}|{role}]"
    return ScopeOrRole


def read_write(read_scope: str, read_role: str, write_scope: str, write_role: str) -> type[BasePermission]:
    """Safe methods need the read scope/role, the rest the write scope/role."""
    read_permission, write_permission = scope_or_role(read_scope, read_role), scope_or_role(write_scope, write_role)

    class ReadWrite(BasePermission):
        def has_permission(self, request, view) -> bool:
            chosen = read_permission() if request.method in SAFE_METHODS else write_permission()
            allowed = chosen.has_permission(request, view)
            self.message = chosen.message
            return allowed

    ReadWrite.__name__ = f"ReadWrite[{read_scope}|{write_scope}]"
    return ReadWrite


class IsAuthenticatedPrincipal(BasePermission):
    """Any authenticated caller, person or system: for endpoints about the caller itself."""

    message = "Authentication credentials were not provided or are invalid."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)
