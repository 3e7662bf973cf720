"""Money in payment providers' input: whole won (KRW) as JSON integers, never floats or strings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_AMOUNT_KRW = 10**12


class KrwAmount(serializers.IntegerField):
    """Won as a JSON integer. DRF's IntegerField takes "1000" and 1000.0 too; money takes neither
    (a float that looks whole may not be, and a string hides a client's bug)."""

    default_error_messages = {
        "not_whole_won": "Enter a whole number of won (KRW) as a JSON integer, not a string or a decimal."
    }

    def __init__(self, *, min_value: int = 1, max_value: int = MAX_AMOUNT_KRW, **kwargs: Any) -> None:
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_whole_won")
        return super().to_internal_value(data)
