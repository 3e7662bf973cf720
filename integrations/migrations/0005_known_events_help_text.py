"""The events field's help text lists the events published today (recording.stored and the alert
rules' firing/resolved joined the list); no data changes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_registry"),
    ]

    operations = [
        migrations.AlterField(
            model_name="integration",
            name="events",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='A JSON list of event names, e.g. ["incident.exhausted"]; [] means every event. Known '
                "events: incident.triggered, incident.acknowledged, incident.resolved, incident.exhausted, "
                "drill.completed, recording.stored, alert_rule.firing, alert_rule.resolved.",
                verbose_name="events",
            ),
        ),
    ]
