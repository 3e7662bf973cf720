"""After a master key rotation: wrap every recording's data key under the newest master key."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings import crypto, services


class Command(BaseCommand):
    help = "Re-wraps recording data keys under the newest RECORDINGS_MASTER_KEYS key (the media is not touched)."

    def handle(self, *args, **options):
        newest = crypto.newest_master_key().key_id
        moved = services.rewrap_keys()
        self.stdout.write(f"{moved} recording key(s) re-wrapped under master key '{newest}'.")
