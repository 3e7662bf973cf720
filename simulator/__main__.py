"""`python -m simulator`: run the carrier simulator in the foreground with a live transcript.

The simulator itself knows nothing of Django; this entry point only reads the project's settings
(config.settings, which reads .env) so that it checks and signs with the same credentials the product
uses. It is a development tool: production does not install the `simulator` package.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from simulator import CarrierSimulator, Scenario
from simulator.scenarios import describe_last_digit_rule

DESCRIPTION = (
    "Run the carrier simulator: Twilio's REST API (and Vonage's Voice API when VONAGE_APPLICATION_ID, "
    "VONAGE_PRIVATE_KEY and VONAGE_SIGNATURE_SECRET are set) on a local port, ringing simulated phones "
    "that call our webhooks back. The last digit of a number picks what its callee does."
)


class StartupError(Exception):
    """A configuration problem that stops the simulator before it listens."""


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=DESCRIPTION)
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
    return parser.parse_args(argv)


def project_settings() -> Any:
    """The product's settings (its .env, and the simulator credentials DEBUG gives without a Twilio account)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    return settings


def main(argv: list[str] | None = None, settings: Any = None) -> int:
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    settings = settings if settings is not None else project_settings()
    try:
        vonage = vonage_arguments(settings)
        simulator = build_simulator(options, settings, vonage)
        base_url = listen(simulator, options)
    except StartupError as error:
        print(f"simulator: {error}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop_requested.set())

    announce(simulator, base_url, vonage.get("vonage_application_id", ""))
    try:
        while not stop_requested.wait(timeout=1.0):
            pass
    finally:
        simulator.stop()
        print_line("Carrier simulator stopped.")
    return 0


def build_simulator(options: argparse.Namespace, settings: Any, vonage: dict[str, str]) -> CarrierSimulator:
    account_sid = settings.TWILIO_ACCOUNT_SID
    auth_token = settings.TWILIO_AUTH_TOKEN
    if not account_sid or not auth_token:
        raise StartupError(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are empty: the simulator checks and signs with them. "
            "Set both (DEBUG=true without TWILIO_ACCOUNT_SID sets simulator defaults)."
        )
    simulator = CarrierSimulator(
        account_sid=account_sid,
        auth_token=auth_token,
        ring_seconds=options.ring_seconds,
        step_seconds=options.step_seconds,
        api_timeout_seconds=options.api_timeout_seconds,
        transcript=print_line,
        **vonage,
    )
    simulator.default_scenario = Scenario(options.default_scenario)
    return simulator


def listen(simulator: CarrierSimulator, options: argparse.Namespace) -> str:
    try:
        return simulator.start(host=options.host, port=options.port)
    except OSError as error:
        raise StartupError(f"cannot listen on {options.host}:{options.port}: {error}") from error


def announce(simulator: CarrierSimulator, base_url: str, vonage_application_id: str) -> None:
    apis = "Twilio API, Vonage Voice API" if vonage_application_id else "Twilio API"
    print_line(f"Carrier simulator ({apis}) listening on {base_url}")
    print_line(f"Point the product at it with TWILIO_API_BASE_URL={base_url}")
    if vonage_application_id:
        print_line(f"and VONAGE_API_BASE_URL={base_url} (application {vonage_application_id})")
    else:
        print_line("Vonage is off: set VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY, VONAGE_SIGNATURE_SECRET")
    print_line("The last digit of the number called picks the callee:")
    print_line(describe_last_digit_rule(simulator.default_scenario))
    print_line("Calls so far: GET /_simulator/calls. Stop with Ctrl+C.")


def print_line(line: str) -> None:
    """Print and flush at once: the transcript is read live, often through a process manager's pipe."""
    print(line, flush=True)


def vonage_arguments(settings: Any) -> dict[str, str]:
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
            raise StartupError(f"VONAGE_PRIVATE_KEY is neither PEM text nor a readable file: {error}") from error
    try:
        return load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise StartupError(f"VONAGE_PRIVATE_KEY is not an unencrypted PEM private key: {error}") from error


def public_key_pem(private_key: PrivateKeyTypes) -> str:
    return private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


if __name__ == "__main__":
    sys.exit(main())
