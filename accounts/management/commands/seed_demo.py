"""Demo data for `make run`: an admin user, an API key and demo contacts. Development only."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import APIKey, Role, Scope, User
from accounts.services import create_api_key, revoke_api_key

DEMO_KEY_NAME = "demo (make run)"
DEMO_PRIMARY = "+821055500003"  # the simulator lets numbers ending in 3 ring out
DEMO_SECONDARY = "+821055500001"  # ... and numbers ending in 1 press 1


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
        self.stdout.write("Try:     curl -X POST http://127.0.0.1:8000/api/v1/alerts/generic \\")
        self.stdout.write(f'           -H "Authorization: Api-Key {raw_key}" -H "Content-Type: application/json" \\')
        body = '{"summary": "서버 A CPU 95%", "tts_text": "긴급 알림입니다. 서버 A CPU 95퍼센트입니다."}'
        self.stdout.write(f"           -d '{body}'")
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
        """Two demo contacts on the simulator's numbers: the primary does not answer, the secondary
        presses 1 (the simulator picks the scenario by the number's last digit)."""
        from incidents.models import Contact, EscalationPolicy
        from incidents.services import create_contact, create_policy

        primary = Contact.objects.filter(phone=DEMO_PRIMARY).first() or create_contact(
            name="데모 1차 담당자 (no answer)", phone=DEMO_PRIMARY
        )
        secondary = Contact.objects.filter(phone=DEMO_SECONDARY).first() or create_contact(
            name="데모 2차 담당자 (presses 1)", phone=DEMO_SECONDARY
        )
        if not EscalationPolicy.objects.filter(name="demo").exists():
            create_policy(
                name="demo",
                contacts=[primary, secondary],
                is_default=not EscalationPolicy.objects.filter(is_default=True).exists(),
                max_attempts=4,
                ring_timeout_seconds=15,
            )
        return [
            f"Demo policy 'demo': {primary.name} {primary.phone}, then {secondary.name} {secondary.phone}.",
        ]
