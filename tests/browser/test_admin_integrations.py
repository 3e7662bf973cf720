"""In a real browser (Debian's Chromium through Playwright): an ADMIN reads a Toss refund in the admin,
each try with the id Toss knows it by, and renames the payment integration through its form without
touching its credentials. Screenshots go to /tmp/shots/admin_refund_message.png,
admin_integration_form.png and admin_integration_renamed.png; on a failure the page is saved under var/test-output/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.models import DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from tests.browser.test_admin_incidents import CHROMIUM, admin_signed_in, shoot
from tests.integrations.conftest import credential_keys  # noqa: F401 (fixture: the tests' key ring)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")

IDEMPOTENCY = "oncall-7-cancel_payment-3f9a1c2e"


def toss_with_a_refund() -> tuple[Integration, OutboundMessage]:
    integration = Integration(
        integration_id="toss_shop", name="Toss (shop)", type="payment", provider="toss", auth_type="api_key"
    )
    integration.set_auth_config({"api_key": "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"})
    integration.full_clean()
    integration.save()
    now = timezone.now()
    message = OutboundMessage.objects.create(
        integration=integration,
        event="",
        method="cancel_payment",
        message_type="async",
        dedup_key="idem:refund-order-1001",
        payload={"payment_key": "tgen_20261130ABCD", "cancel_reason": "고객 변심", "cancel_amount": 15000},
        status=MessageStatus.DELIVERED,
        attempts=2,
        delivered_at=now,
    )
    DeliveryAttempt.objects.create(
        message=message,
        number=1,
        started_at=now - timedelta(seconds=40),
        finished_at=now - timedelta(seconds=30),
        error="api.tosspayments.com timed out (timeout (3.0, 10.0)s)",
        request_id=IDEMPOTENCY,
    )
    DeliveryAttempt.objects.create(
        message=message,
        number=2,
        started_at=now - timedelta(seconds=5),
        finished_at=now,
        ok=True,
        http_status=200,
        excerpt='{"status": "PARTIAL_CANCELED"} (found by querying first)',
        request_id=IDEMPOTENCY,
    )
    return integration, message


def test_an_admin_reads_a_refund_try_by_try_and_renames_its_integration(live_server, settings):
    # given: plain-http cookies for the live server, an ADMIN, a Toss integration and a refund that
    # timed out once, then was found applied by the query before any second cancel
    integration, message = toss_with_a_refund()

    with admin_signed_in("admin_integrations", live_server, settings) as page:
        # when: the ADMIN opens the refund's message
        page.goto(f"{live_server.url}/admin/integrations/outboundmessage/{message.pk}/change/")

        # then: both tries are listed, each with Toss's request id, the timeout and the answer
        attempts = page.locator(".inline-group")
        expect(attempts).to_contain_text("Request id")
        expect(attempts.get_by_text(IDEMPOTENCY)).to_have_count(2)
        expect(attempts).to_contain_text("timed out")
        expect(attempts).to_contain_text("PARTIAL_CANCELED")
        shoot(page, "admin_refund_message")

        # when: the ADMIN renames the integration in its form (no credential typed)
        page.goto(f"{live_server.url}/admin/integrations/integration/{integration.pk}/change/")
        page.fill("input[name=name]", "Toss (online shop)")
        expect(page.locator("select[name=auth_type] option[value=oauth2_refresh_token]")).to_have_count(1)
        expect(page.locator("textarea[name=auth_config]")).to_have_value("")  # never shown back
        shoot(page, "admin_integration_form")
        page.click("input[name=_save]")

        # then: saved, and the secret key it had is still the one stored
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
        expect(page.locator("td.field-subscribed_events")).to_have_text("none (takes no events)")
        shoot(page, "admin_integration_renamed")

    stored = Integration.objects.get(pk=integration.pk)
    assert stored.name == "Toss (online shop)"
    assert stored.auth_config == {"api_key": "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"}
