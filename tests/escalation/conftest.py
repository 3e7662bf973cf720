"""One carrier simulator speaking both Twilio and Vonage, and the whole product pointed at its Vonage side.

`both_carriers` configures both carriers against the same simulator (failover tests switch
VOICE_PROVIDER between them); `vonage_carrier` adds a real worker and makes Vonage the primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from simulator import CarrierSimulator
from tests.conftest import SIMULATED_ACCOUNT_SID, SIMULATED_AUTH_TOKEN

VONAGE_APPLICATION_ID = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
VONAGE_SIGNATURE_SECRET = "vonage-signature-secret-for-the-e2e-tests-0123456789"  # >= 32 bytes for HS256
VONAGE_FROM_NUMBER = "821000000000"


@dataclass(frozen=True)
class VonageKeys:
    private_pem: str  # PKCS#8, as the Vonage dashboard issues it: what VONAGE_PRIVATE_KEY holds
    public_pem: str  # what the simulator checks our application JWTs with


@pytest.fixture(scope="session")
def vonage_keys() -> VonageKeys:
    """One RSA key pair per session: generating one takes a noticeable fraction of a second."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return VonageKeys(private_pem, public_pem)


@pytest.fixture
def both_carriers(live_server, settings, vonage_keys: VonageKeys) -> Iterator[CarrierSimulator]:
    """The carrier simulator with Twilio and Vonage credentials, both carriers' settings aimed at it,
    and its callbacks aimed at the live server. VOICE_PROVIDER is left as it is."""
    simulator = CarrierSimulator(
        account_sid=SIMULATED_ACCOUNT_SID,
        auth_token=SIMULATED_AUTH_TOKEN,
        ring_seconds=0.2,
        step_seconds=0.02,
        api_timeout_seconds=3.0,
        vonage_application_id=VONAGE_APPLICATION_ID,
        vonage_public_key_pem=vonage_keys.public_pem,
        vonage_signature_secret=VONAGE_SIGNATURE_SECRET,
    )
    base_url = simulator.start()
    settings.TWILIO_ACCOUNT_SID = SIMULATED_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = SIMULATED_AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = "+821000000000"
    settings.TWILIO_API_BASE_URL = base_url
    settings.VONAGE_APPLICATION_ID = VONAGE_APPLICATION_ID
    settings.VONAGE_PRIVATE_KEY = vonage_keys.private_pem
    settings.VONAGE_SIGNATURE_SECRET = VONAGE_SIGNATURE_SECRET
    settings.VONAGE_FROM_NUMBER = VONAGE_FROM_NUMBER
    settings.VONAGE_API_BASE_URL = base_url
    settings.PUBLIC_BASE_URL = live_server.url
    yield simulator
    simulator.wait_until_idle(timeout=15)
    simulator.stop()


@pytest.fixture
def vonage_carrier(both_carriers: CarrierSimulator, settings, celery_worker) -> CarrierSimulator:
    """The whole product on Vonage: the simulator and a real worker."""
    settings.VOICE_PROVIDER = "vonage"
    return both_carriers
