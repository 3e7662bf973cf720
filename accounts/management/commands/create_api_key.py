"""python manage.py create_api_key NAME --scopes alerts:write,incidents:read [--expires-in-days N]"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Scope
from accounts.services import create_api_key
from config.errors import InvalidInput


class Command(BaseCommand):
    help = "Create an API key for a system. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes. Known: {', '.join(Scope.values)}",
        )
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, name: str, scopes: str, expires_in_days: int | None, **options):
        expires_at = None
        if expires_in_days is not None:
            if expires_in_days <= 0:
                raise CommandError("--expires-in-days must be a positive number of days.")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        try:
            api_key, raw_key = create_api_key(name=name, scopes=scopes.split(","), expires_at=expires_at)
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        expiry = api_key.expires_at.isoformat() if api_key.expires_at else "never"
        scopes = ", ".join(api_key.scopes)
        self.stdout.write(
            f"Created API key '{api_key.name}' (prefix {api_key.prefix}), scopes: {scopes}, expires: {expiry}."
        )
        self.stdout.write("Store it now: it is not kept in clear and cannot be shown again.")
        self.stdout.write(raw_key)
