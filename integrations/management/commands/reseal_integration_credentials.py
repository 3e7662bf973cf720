"""After a credential key rotation: seal every integration's credentials under the newest key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations import credentials, registry


class Command(BaseCommand):
    help = (
        "Seals every integration's credentials again under the newest INTEGRATIONS_CREDENTIAL_KEYS key; "
        "afterwards the retired key can be removed from the ring."
    )

    def handle(self, *args, **options):
        try:
            moved = registry.reseal_credentials()
        except credentials.CredentialError as exc:
            raise CommandError(f"{exc} Nothing after that integration was changed.") from exc
        self.stdout.write(f"{moved} integration(s) re-sealed under credential key '{credentials.newest_key_id()}'.")
