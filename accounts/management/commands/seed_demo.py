"""Demo data for `make run`: an admin user, an API key and demo contacts. Development only."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import APIKey, Role, Scope, User
from accounts.services import create_api_key, revoke_api_key

DEMO_KEY_NAME = "demo (make run)"


class Command(BaseCommand):
    help = "Create the demo admin, a fresh demo API key and demo contacts (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo makes a known admin account; it runs only with DEBUG on (or --force).")
        username, password = self._admin()
        raw_key = self._api_key()
        for line in self._demo_data():
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write(f"Admin:   http://127.0.0.1:8000/admin/  user {username}  password {password}")
        self.stdout.write("API:     http://127.0.0.1:8000/api/docs/")
        self.stdout.write("Flower:  http://127.0.0.1:5555/")
        self.stdout.write(f"API key: {raw_key}")

    def _admin(self) -> tuple[str, str]:
        password_file = settings.VAR_DIR / "demo-admin-password"
        user = User.objects.filter(username="admin").first()
        if user is None or not password_file.exists() or not user.check_password(password_file.read_text().strip()):
            password = secrets.token_urlsafe(12)
            user = user or User(username="admin", email="admin@example.com")
            user.role, user.is_staff, user.is_superuser = Role.SUPER_ADMIN, True, True
            user.set_password(password)
            user.save()
            password_file.write_text(password)
            password_file.chmod(0o600)
        return "admin", password_file.read_text().strip()

    def _api_key(self) -> str:
        for old in APIKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            revoke_api_key(old)
        _, raw_key = create_api_key(
            name=DEMO_KEY_NAME,
            scopes=[Scope.ALERTS_WRITE, Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE, Scope.POLICIES_WRITE],
        )
        return raw_key

    def _demo_data(self) -> list[str]:
        return []
