"""The seed's alert rules: CPU > 80 % for 5 min, memory > 85 % for 5 min, disk > 90 % for 1 min, API
response time > 5 s for 3 min. Installed disabled unless MONITORING_SEED_RULES is true (a laptop's CPU
should not phone anybody); an existing rule of the same name is left as it is."""

from django.conf import settings
from django.db import migrations

# (name, metric, threshold, for_seconds, level): CPU is a warning as in the seed's own example; a full
# disk or a slow API breaks paging itself, so those phone.
SEED_RULES = [
    ("high_cpu_usage", "system_cpu_usage_percent", 80, 300, "warning"),
    ("high_memory_usage", "system_memory_usage_percent", 85, 300, "warning"),
    ("high_disk_usage", "system_disk_usage_percent", 90, 60, "critical"),
    ("slow_api_response", "aicc_api_duration_seconds", 5, 180, "critical"),
]


def install(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for name, metric, threshold, for_seconds, level in SEED_RULES:
        AlertRule.objects.get_or_create(
            rule_name=name,
            defaults={
                "metric": metric,
                "operator": ">",
                "threshold": threshold,
                "for_seconds": for_seconds,
                "level": level,
                "labels": {},
                "enabled": settings.MONITORING_SEED_RULES,
            },
        )


def remove(apps, schema_editor):
    apps.get_model("monitoring", "AlertRule").objects.filter(rule_name__in=[rule[0] for rule in SEED_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
