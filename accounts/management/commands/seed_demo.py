"""Demo data for `make run`: an admin user, an API key and demo contacts. Development only.

The demo API key is kept in var/demo-api-key (var/ is gitignored) and reused across restarts while it
still works, so a script or an Alertmanager pointed at it keeps working; when it no longer does
(revoked in the admin, expired, a fresh database) a new one is made and the output says why."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import APIKey, Role, Scope, User
from accounts.selectors import APIKeyRejected, api_key_from_secret
from accounts.services import create_api_key, revoke_api_key
from config.devrun import url_lines

DEMO_KEY_NAME = "demo (make run)"
DEMO_KEY_FILE = "demo-api-key"
DEMO_KEY_SCOPES = [
    Scope.ALERTS_WRITE,
    Scope.INCIDENTS_READ,
    Scope.INCIDENTS_WRITE,
    Scope.POLICIES_WRITE,
    Scope.RECORDINGS_READ,
]
DEMO_PRIMARY = "+821055500003"  # the simulator lets numbers ending in 3 ring out
DEMO_SECONDARY = "+821055500001"  # ... and numbers ending in 1 press 1


class Command(BaseCommand):
    help = "Create the demo admin, the demo API key (kept across restarts) and demo contacts (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo makes a known admin account; it runs only with DEBUG on (or --force).")
        username, password = self._admin()
        raw_key, key_note = self._api_key()
        for line in self._demo_data():
            self.stdout.write(line)
        self.stdout.write("")
        admin, *others = url_lines(settings.WEB_PORT, settings.FLOWER_PORT)
        self.stdout.write(f"{admin}  user {username}  password {password}")
        for line in others:
            self.stdout.write(line)
        base = f"http://127.0.0.1:{settings.WEB_PORT}"
        self.stdout.write(f"Try:     curl -X POST {base}/api/v1/alerts/generic \\")
        self.stdout.write(f'           -H "Authorization: Api-Key {raw_key}" -H "Content-Type: application/json" \\')
        body = '{"summary": "서버 A CPU 95%", "tts_text": "긴급 알림입니다. 서버 A CPU 95퍼센트입니다."}'
        self.stdout.write(f"           -d '{body}'")
        self.stdout.write(f"API key: {raw_key}  ({key_note})")

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

    def _api_key(self) -> tuple[str, str]:
        """(the demo key, what happened to it): the stored one while it still works, else a new one."""
        key_file = settings.VAR_DIR / DEMO_KEY_FILE
        why_new = "new"
        if key_file.exists():
            stored = key_file.read_text().strip()
            try:
                api_key = api_key_from_secret(stored)
            except APIKeyRejected as rejection:
                why_new = f"new: the previous demo key no longer works ({rejection}), so it was replaced"
            else:
                if api_key.name == DEMO_KEY_NAME:
                    return stored, f"the same as last time, kept in var/{DEMO_KEY_FILE}"
                why_new = "new: the stored key was not the demo key"
        for old in APIKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            revoke_api_key(old)
        _, raw_key = create_api_key(name=DEMO_KEY_NAME, scopes=DEMO_KEY_SCOPES)
        key_file.write_text(raw_key)
        key_file.chmod(0o600)
        return raw_key, f"{why_new}; kept in var/{DEMO_KEY_FILE} for the next start"

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
                record_calls=True,  # so a lead hears what the on-call person heard and pressed
            )
        return [
            f"Demo policy 'demo': {primary.name} {primary.phone}, then {secondary.name} {secondary.phone};"
            " answered calls are recorded (Recordings in the admin, GET /api/v1/recordings).",
        ]
