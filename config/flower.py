"""`python -m config.flower [flower options]`: start Flower only when it is safe to.

Flower's web UI and API can revoke tasks and shut workers down, so it never runs open to a network:

- FLOWER_BASIC_AUTH (`user:password`, several separated by commas) turns on HTTP basic auth. Flower
  reads the variable itself; we pass it through the environment, never on the command line, where
  `ps` would show it.
- Without it Flower is unauthenticated, which is allowed only in development (DEBUG on) and only on a
  loopback address. With DEBUG off it refuses to start.

FLOWER_ADDRESS (default 127.0.0.1) and FLOWER_PORT (default 5555) say where it listens.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
LOOPBACK_NAMES = {"localhost"}
# Where Flower listens and who may use it are checked here, so they come from the environment only.
GUARDED_OPTIONS = ("--address", "--port", "--basic-auth", "--basic_auth", "--auth")


class FlowerRefused(Exception):
    """Flower's configuration would expose it; the message says what to set."""


def flower_command(environment: Mapping[str, str], extra_arguments: list[str]) -> list[str]:
    """The celery flower command line for this environment, or FlowerRefused."""
    overridden = [argument for argument in extra_arguments if argument.startswith(GUARDED_OPTIONS)]
    if overridden:
        raise FlowerRefused(f"set FLOWER_ADDRESS, FLOWER_PORT and FLOWER_BASIC_AUTH instead of {overridden[0]}")
    debug = environ.Env.parse_value(environment.get("DEBUG", "false"), bool)
    address = environment.get("FLOWER_ADDRESS", "") or "127.0.0.1"
    port = environment.get("FLOWER_PORT", "") or "5555"
    credentials = environment.get("FLOWER_BASIC_AUTH", "")
    if credentials:
        check_credentials(credentials)
    elif not debug:
        raise FlowerRefused(
            "FLOWER_BASIC_AUTH is not set and DEBUG is off: Flower can revoke tasks and shut down workers, "
            "so it does not start without authentication. Set FLOWER_BASIC_AUTH=user:password (a secret)."
        )
    elif not is_loopback(address):
        raise FlowerRefused(
            f"FLOWER_ADDRESS={address} without FLOWER_BASIC_AUTH would publish an unauthenticated Flower. "
            "Bind it to 127.0.0.1 or set FLOWER_BASIC_AUTH=user:password."
        )
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "flower",
        f"--address={address}",
        f"--port={port}",
        *extra_arguments,
    ]


def check_credentials(credentials: str) -> None:
    for pair in credentials.split(","):
        user, _, password = pair.partition(":")
        if not user.strip() or not password:
            raise FlowerRefused("FLOWER_BASIC_AUTH must be user:password (several separated by commas).")


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def project_environment() -> dict[str, str]:
    """The process environment over .env, as the settings read it (the environment wins)."""
    env_file = BASE_DIR / ".env"
    if env_file.is_file():
        environ.Env.read_env(str(env_file), overwrite=False)
    return dict(os.environ)


def main(argv: list[str]) -> int:
    environment = project_environment()
    try:
        command = flower_command(environment, argv[1:])
    except FlowerRefused as refusal:
        print(f"flower: refusing to start: {refusal}", file=sys.stderr)
        return 2
    if not environment.get("FLOWER_BASIC_AUTH"):
        # An empty FLOWER_BASIC_AUTH would reach Flower as one empty credential: drop it.
        environment.pop("FLOWER_BASIC_AUTH", None)
        print("flower: FLOWER_BASIC_AUTH unset: unauthenticated, on loopback only (development)", file=sys.stderr)
    os.execve(command[0], command, environment)  # noqa: S606 (replace this process with Flower)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
