"""SMS (or a topic) through AWS SNS Publish, with boto3 (see aws.py for credentials, region, the guard).

send_sms {to?, text, subject?}: with `to`, an SMS to that number; without, to options.topic_arn (whose
subscribers may be SMS, email, queues...), else to options.to. Our events go the same way. Options:
{"topic_arn"?, "to"?, "region"?, "sender_id"?, "sms_type": "Transactional"|"Promotional"}; one of
topic_arn or to is required, so every event has somewhere to go.
"""

from __future__ import annotations

import re

from rest_framework import serializers

from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import aws
from integrations.providers.base import CallContext, Provider, ProviderError, Result
from integrations.providers.twilio_sms import E164, PhoneNumberField, sms_text

TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
SENDER_ID = re.compile(r"^[A-Za-z0-9]{1,11}$")
SMS_TYPES = ("Transactional", "Promotional")
SMS_MAX_CHARS = 1600
SUBJECT_MAX_CHARS = 100


class SendSmsIn(serializers.Serializer):
    to = PhoneNumberField(required=False)
    text = serializers.CharField(max_length=SMS_MAX_CHARS)
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS, required=False)  # topics' email subscribers


class SnsProvider(Provider):
    name = "sns"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"send_sms": SendSmsIn}
    event_method = "send_sms"
    needs_endpoint = False  # AWS's own endpoint for the region; endpoint_url overrides it (a VPC endpoint, tests)
    auth_types = aws.AUTH_TYPES

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        errors.update(aws.check_integration(integration))
        options = integration.options if isinstance(integration.options, dict) else {}
        topic, to = options.get("topic_arn"), options.get("to")
        problems = [errors["options"]] if "options" in errors else []
        if not topic and not to:
            problems.append(
                "Set options.topic_arn (a topic) or options.to (one phone number, e.g. +821012345678) for our events."
            )
        if topic and not (isinstance(topic, str) and TOPIC_ARN.match(topic)):
            problems.append("options.topic_arn must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>).")
        if to and not (isinstance(to, str) and E164.match(to)):
            problems.append("options.to must be one phone number in E.164 form, e.g. +821012345678.")
        sender = options.get("sender_id")
        if sender and not (isinstance(sender, str) and SENDER_ID.match(sender)):
            problems.append("options.sender_id must be 1-11 letters or digits.")
        if options.get("sms_type") and options["sms_type"] not in SMS_TYPES:
            problems.append(f"options.sms_type must be one of: {', '.join(SMS_TYPES)}.")
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    def event_input(self, integration, event, payload, context):
        language = rendering.language_of(integration)
        data = {"text": sms_text(event, payload, language)}
        if integration.options.get("topic_arn"):
            data["subject"] = rendering.email_subject(event, payload, language=language)[:SUBJECT_MAX_CHARS]
        return data

    def do_send_sms(self, integration, data: dict, context: CallContext) -> Result:
        options = integration.options or {}
        arguments: dict = {"Message": data["text"]}
        if data.get("to") or not options.get("topic_arn"):
            arguments["PhoneNumber"] = data.get("to") or options.get("to")
            attributes = {}
            if options.get("sender_id"):
                attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": options["sender_id"]}
            attributes["AWS.SNS.SMS.SMSType"] = {
                "DataType": "String",
                "StringValue": options.get("sms_type") or "Transactional",  # alerts: delivery over price
            }
            arguments["MessageAttributes"] = attributes
        else:
            arguments["TopicArn"] = options["topic_arn"]
            if data.get("subject"):
                arguments["Subject"] = data["subject"]
        if not arguments.get("PhoneNumber") and not arguments.get("TopicArn"):
            raise ProviderError("No recipient: give payload.to or set options.to or options.topic_arn.", permanent=True)
        client = aws.client_for(integration, "sns", context)
        answer = aws.call(integration, "SNS", "Publish", lambda: client.publish(**arguments))
        target = (
            {"to": arguments["PhoneNumber"]} if "PhoneNumber" in arguments else {"topic_arn": arguments["TopicArn"]}
        )
        status = (answer.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return Result(http_status=status, data={"message_id": answer.get("MessageId"), **target})


PROVIDER = SnsProvider()
