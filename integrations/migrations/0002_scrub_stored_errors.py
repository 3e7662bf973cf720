"""Errors stored before the scrubbing existed may quote a Slack or webhook URL in full (its path is the
credential): cut them to scheme://host/… as new errors are."""

from django.db import migrations

from config.outbound import scrub

URL_KINDS = ("webhook", "slack")


def scrub_stored_errors(apps, schema_editor):
    OutboundMessage = apps.get_model("integrations", "OutboundMessage")
    DeliveryAttempt = apps.get_model("integrations", "DeliveryAttempt")
    messages = OutboundMessage.objects.exclude(last_error="").filter(integration__kind__in=URL_KINDS)
    for message in messages.select_related("integration").iterator(chunk_size=500):
        cleaned = scrub(message.last_error, message.integration.target)
        if cleaned != message.last_error:
            OutboundMessage.objects.filter(pk=message.pk).update(last_error=cleaned)
    attempts = DeliveryAttempt.objects.exclude(error="").filter(message__integration__kind__in=URL_KINDS)
    for attempt in attempts.select_related("message__integration").iterator(chunk_size=500):
        cleaned = scrub(attempt.error, attempt.message.integration.target)
        if cleaned != attempt.error:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(error=cleaned)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(scrub_stored_errors, migrations.RunPython.noop)]
