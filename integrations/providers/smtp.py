"""Email over SMTP, through Django's mail backend (EMAIL_URL): a refused recipient or a 5xx reply
will be refused again; disconnects, timeouts and 4xx replies are worth another try."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from rest_framework import serializers

from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result

SMTP_TIMEOUT_SECONDS = 10.0
EVENT_HEADER = "X-Oncall-Event"


class SendEmailIn(serializers.Serializer):
    to = serializers.ListField(child=serializers.EmailField(), min_length=1, max_length=50)
    subject = serializers.CharField(max_length=200)
    text = serializers.CharField(max_length=100000)
    html = serializers.CharField(max_length=200000, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("to"), str):  # one address, or "a@x, b@y"
            data = {**data, "to": [part.strip() for part in data["to"].split(",") if part.strip()]}
        return super().to_internal_value(data)


class SmtpProvider(Provider):
    name = "smtp"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"send_email": SendEmailIn}
    event_method = "send_email"
    needs_endpoint = False
    auth_types = frozenset({"none"})

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        problem = integration.check_recipients()
        if problem:
            errors["options"] = problem
        return errors

    def event_input(self, integration, event, payload, context):
        language = rendering.language_of(integration)
        return {
            "to": integration.recipients,
            "subject": rendering.email_subject(event, payload, language=language),
            "text": rendering.email_body(event, payload, message_id=context.message_id, language=language),
        }

    def do_send_email(self, integration, data: dict, context: CallContext) -> Result:
        timeout = context.timeout[1] if context.timeout else SMTP_TIMEOUT_SECONDS
        email = EmailMultiAlternatives(
            subject=data["subject"],
            body=data["text"],
            from_email=getattr(settings, "INTEGRATION_EMAIL_FROM", None) or settings.DEFAULT_FROM_EMAIL,
            to=data["to"],
            headers={EVENT_HEADER: context.event} if context.event else None,
            connection=get_connection(timeout=timeout),
        )
        if data.get("html"):
            email.attach_alternative(data["html"], "text/html")
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients.items()
            refused = "; ".join(f"{address}: {code} {http.one_line(reply)}" for address, (code, reply) in refusals)
            permanent = all(code >= 500 for _, (code, _) in refusals)
            raise ProviderError(f"SMTP refused every recipient: {refused}", permanent=permanent) from exc
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code} {http.one_line(exc.smtp_error)}"
            raise ProviderError(reason, permanent=exc.smtp_code >= 500) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ProviderError(
                f"SMTP server does not support what the settings ask for: {exc}", permanent=True
            ) from exc
        except TimeoutError as exc:
            raise ProviderError(f"SMTP timed out: {exc}", permanent=False, timed_out=True) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections
            raise ProviderError(f"SMTP connection failed: {type(exc).__name__}: {exc}", permanent=False) from exc
        except ValueError as exc:  # BadHeaderError included: a header that cannot be sent as given
            raise ProviderError(f"The email could not be built: {exc}", permanent=True) from exc
        return Result(data={"accepted": data["to"]})


PROVIDER = SmtpProvider()
