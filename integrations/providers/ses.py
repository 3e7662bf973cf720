"""Email through AWS SES (the v2 API, SendEmail with simple content), with boto3 (see aws.py for
credentials, region and the guard).

send_email {to, subject, text, html?}, the SMTP provider's input. Options: {"from": a verified SES
identity, "to": [addresses our events go to], "region"?, "configuration_set"?}. An unverified sender
or a recipient SES rejects (MessageRejected) is permanent; throttling and AWS's own trouble are retried.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import aws
from integrations.providers.base import CallContext, Provider, Result
from integrations.providers.smtp import EVENT_HEADER, SendEmailIn

CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHARSET = "UTF-8"


class SesProvider(Provider):
    name = "ses"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"send_email": SendEmailIn}
    event_method = "send_email"
    needs_endpoint = False  # AWS's own endpoint for the region; endpoint_url overrides it (a VPC endpoint, tests)
    auth_types = aws.AUTH_TYPES

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        errors.update(aws.check_integration(integration))
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = [errors["options"]] if "options" in errors else []
        sender = options.get("from")
        try:
            validate_email(sender if isinstance(sender, str) else "")
        except ValidationError:
            problems.append('Set options.from to the sender, an SES verified identity, e.g. "oncall@example.com".')
        recipients = integration.check_recipients()
        if recipients:
            problems.append(recipients)
        configuration_set = options.get("configuration_set")
        if configuration_set and not (
            isinstance(configuration_set, str) and CONFIGURATION_SET.match(configuration_set)
        ):
            problems.append("options.configuration_set must be an SES configuration set name.")
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    def event_input(self, integration, event, payload, context):
        language = rendering.language_of(integration)
        return {
            "to": integration.recipients,
            "subject": rendering.email_subject(event, payload, language=language),
            "text": rendering.email_body(event, payload, message_id=context.message_id, language=language),
        }

    def do_send_email(self, integration, data: dict, context: CallContext) -> Result:
        options = integration.options or {}
        body = {"Text": {"Data": data["text"], "Charset": CHARSET}}
        if data.get("html"):
            body["Html"] = {"Data": data["html"], "Charset": CHARSET}
        simple: dict = {"Subject": {"Data": data["subject"], "Charset": CHARSET}, "Body": body}
        if context.event:
            simple["Headers"] = [{"Name": EVENT_HEADER, "Value": context.event}]
        arguments: dict = {
            "FromEmailAddress": options["from"],
            "Destination": {"ToAddresses": data["to"]},
            "Content": {"Simple": simple},
        }
        if options.get("configuration_set"):
            arguments["ConfigurationSetName"] = options["configuration_set"]
        client = aws.client_for(integration, "sesv2", context)
        answer = aws.call(integration, "SES", "SendEmail", lambda: client.send_email(**arguments))
        status = (answer.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return Result(http_status=status, data={"message_id": answer.get("MessageId"), "accepted": data["to"]})


PROVIDER = SesProvider()
