"""`manage.py carrier_simulator`: run the carrier simulator in the foreground with a live transcript."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.simulator import CarrierSimulator, Scenario
from orchestrator.simulator.scenarios import describe_last_digit_rule


class Command(BaseCommand):
    help = (
        "Run the carrier simulator: Twilio's REST API (and Vonage's Voice API when VONAGE_APPLICATION_ID, "
        "VONAGE_PRIVATE_KEY and VONAGE_SIGNATURE_SECRET are set) on a local port, ringing simulated phones "
        "that call our webhooks back. The last digit of a number picks what its callee does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
        parser.add_argument("--ring-seconds", type=float, default=3.0, help="how long a phone rings before answering")
        parser.add_argument("--step-seconds", type=float, default=0.5, help="how long each step of a call takes")
        parser.add_argument(
            "--api-timeout-seconds",
            type=float,
            default=15.0,
            help="how long Calls.create is held for numbers in the api_timeout scenario",
        )
        parser.add_argument(
            "--default-scenario",
            default=Scenario.PRESS_1.value,
            choices=[scenario.value for scenario in Scenario],
            help="the scenario of numbers ending in 0",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        account_sid = settings.TWILIO_ACCOUNT_SID
        auth_token = settings.TWILIO_AUTH_TOKEN
        if not account_sid or not auth_token:
            raise CommandError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are empty: the simulator checks and signs with them. "
                "Set both (DEBUG=true without TWILIO_ACCOUNT_SID sets simulator defaults)."
            )
        vonage = vonage_arguments()
        simulator = CarrierSimulator(
            account_sid=account_sid,
            auth_token=auth_token,
            ring_seconds=options["ring_seconds"],
            step_seconds=options["step_seconds"],
            api_timeout_seconds=options["api_timeout_seconds"],
            transcript=self._print_line,
            **vonage,
        )
        simulator.default_scenario = Scenario(options["default_scenario"])
        try:
            base_url = simulator.start(host=options["host"], port=options["port"])
        except OSError as error:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {error}") from error

        stop_requested = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop_requested.set())

        apis = "Twilio API, Vonage Voice API" if vonage else "Twilio API"
        self._print_line(f"Carrier simulator ({apis}) listening on {base_url}")
        self._print_line(f"Point the product at it with TWILIO_API_BASE_URL={base_url}")
        if vonage:
            self._print_line(f"and VONAGE_API_BASE_URL={base_url} (application {vonage['vonage_application_id']})")
        else:
            self._print_line("Vonage is off: set VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY, VONAGE_SIGNATURE_SECRET")
        self._print_line("The last digit of the number called picks the callee:")
        self._print_line(describe_last_digit_rule(simulator.default_scenario))
        self._print_line("Calls so far: GET /_simulator/calls. Stop with Ctrl+C.")
        try:
            while not stop_requested.wait(timeout=1.0):
                pass
        finally:
            simulator.stop()
            self._print_line("Carrier simulator stopped.")

    def _print_line(self, line: str) -> None:
        """Print and flush at once: the transcript is read live, often through a process manager's pipe."""
        self.stdout.write(line)
        self.stdout.flush()


def vonage_arguments() -> dict[str, str]:
    """The simulator's Vonage arguments from settings, or {} when any of the three is unset.

    The simulator checks application JWTs with the public half of VONAGE_PRIVATE_KEY (PEM text, with
    real or escaped newlines, or a path to a PEM file) and signs webhooks with VONAGE_SIGNATURE_SECRET.
    """
    application_id = settings.VONAGE_APPLICATION_ID
    private_key_setting = settings.VONAGE_PRIVATE_KEY
    signature_secret = settings.VONAGE_SIGNATURE_SECRET
    if not (application_id and private_key_setting and signature_secret):
        return {}
    return {
        "vonage_application_id": application_id,
        "vonage_public_key_pem": public_key_pem(load_private_key(private_key_setting)),
        "vonage_signature_secret": signature_secret,
    }


def load_private_key(setting: str) -> PrivateKeyTypes:
    if "-----BEGIN" in setting:
        pem = setting.replace("\\n", "\n").encode("utf-8")
    else:
        try:
            pem = Path(setting).expanduser().read_bytes()
        except OSError as error:
            raise CommandError(f"VONAGE_PRIVATE_KEY is neither PEM text nor a readable file: {error}") from error
    try:
        return load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CommandError(f"VONAGE_PRIVATE_KEY is not an unencrypted PEM private key: {error}") from error


def public_key_pem(private_key: PrivateKeyTypes) -> str:
    return private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
