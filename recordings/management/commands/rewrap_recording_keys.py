"""After a master key rotation (or turning KMS on or off): wrap every recording's data key under the
current key (KMS's, or the ring's newest)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings import crypto, services


class Command(BaseCommand):
    help = (
        "Re-wraps recording data keys under the current key: KMS's, or the newest RECORDINGS_MASTER_KEYS key "
        "(the media is not touched)."
    )

    def handle(self, *args, **options):
        moved = services.rewrap_keys()
        self.stdout.write(f"{moved} recording key(s) re-wrapped under key '{crypto.current_key_id()}'.")
