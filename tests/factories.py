"""Test data, made through the services so it is valid the way production data is."""

from __future__ import annotations

import itertools

from incidents.services import create_contact, create_policy

_numbers = itertools.count(1)


def phone(last_digit: int = 0) -> str:
    """A unique Korean mobile number ending in `last_digit` (the simulator picks its scenario by it)."""
    return f"+8210{next(_numbers):07d}{last_digit}"


def contact(name: str, last_digit: int = 0, **kwargs):
    return create_contact(name=name, phone=phone(last_digit), **kwargs)


def policy(*contacts, name: str | None = None, is_default: bool = True, **options):
    options.setdefault("ring_timeout_seconds", 5)
    return create_policy(
        name=name or f"policy-{next(_numbers)}", contacts=list(contacts), is_default=is_default, **options
    )
