"""The seed's registry shape: integration_id, type, provider, endpoint_url, auth_type, sealed
auth_config, options. Today's rows keep working: a webhook becomes type "webhook" with provider
"webhook" (its signing secret sealed into auth_config), a Slack webhook type "notification" with
provider "slack_webhook", an email integration type "notification" with provider "smtp" (its
addresses in options["to"]). integration_id is made from the name, unique.

Sealing a stored signing secret needs INTEGRATIONS_CREDENTIAL_KEYS (or DEBUG); with neither, the
migration stops and says so before changing anything."""

import django.core.serializers.json
import django.core.validators
from django.db import migrations, models
from django.utils.text import slugify

PROVIDERS = {"webhook": ("webhook", "webhook"), "slack": ("notification", "slack_webhook"), "email": ("notification", "smtp")}


def forwards(apps, schema_editor):
    from integrations import credentials

    Integration = apps.get_model("integrations", "Integration")
    taken: set[str] = set()
    for integration in Integration.objects.order_by("pk"):
        base = slugify(integration.name)[:90] or f"integration-{integration.pk}"
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        integration.integration_id = slug
        integration.type, integration.provider = PROVIDERS.get(integration.kind, ("webhook", "webhook"))
        if integration.kind == "email":
            integration.options = {"to": [a.strip() for a in integration.target.split(",") if a.strip()]}
            integration.endpoint_url = ""
        else:
            integration.endpoint_url = integration.target
        if integration.secret:
            integration.auth_config_sealed = credentials.seal_config({"signing_secret": integration.secret})
            integration.auth_config_keys = ["signing_secret"]
        integration.auth_type = "none"
        integration.save()
    OutboundMessage = apps.get_model("integrations", "OutboundMessage")
    for kind, (_, provider) in PROVIDERS.items():
        method = {"webhook": "post_event", "slack_webhook": "post_message", "smtp": "send_email"}[provider]
        OutboundMessage.objects.filter(integration__kind=kind, method="").update(method=method)


def backwards(apps, schema_editor):
    from integrations import credentials

    Integration = apps.get_model("integrations", "Integration")
    kinds = {provider: kind for kind, (_, provider) in PROVIDERS.items()}
    for integration in Integration.objects.all():
        integration.kind = kinds.get(integration.provider, "webhook")
        if integration.provider == "smtp":
            integration.target = ",".join((integration.options or {}).get("to") or [])
        else:
            integration.target = integration.endpoint_url
        config = credentials.open_config(integration.auth_config_sealed) if integration.auth_config_sealed else {}
        integration.secret = config.get("signing_secret", "")
        integration.save()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_translated_names")]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="integration_id",
            field=models.CharField(max_length=100, null=True, verbose_name="integration id"),
        ),
        migrations.AddField(
            model_name="integration",
            name="type",
            field=models.CharField(
                choices=[("crm", "CRM"), ("payment", "Payment"), ("notification", "Notification"), ("social", "Social"), ("webhook", "Webhook")],
                default="webhook",
                max_length=20,
                verbose_name="type",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="integration",
            name="provider",
            field=models.CharField(default="webhook", help_text="The provider module that speaks to it, e.g. webhook.", max_length=50, verbose_name="provider"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="integration",
            name="endpoint_url",
            field=models.CharField(blank=True, help_text="The base URL requests go to (a webhook's or Slack's URL). Blank for SMTP.", max_length=2000, verbose_name="endpoint URL"),
        ),
        migrations.AddField(
            model_name="integration",
            name="auth_type",
            field=models.CharField(
                choices=[("none", "None"), ("api_key", "API key"), ("basic", "HTTP basic"), ("bearer", "Bearer token"), ("oauth2_client_credentials", "OAuth2 client credentials"), ("oauth2_jwt_bearer", "OAuth2 JWT bearer"), ("service_account", "Service account (JWT bearer)")],
                default="none",
                max_length=40,
                verbose_name="auth type",
            ),
        ),
        migrations.AddField(
            model_name="integration",
            name="auth_config_sealed",
            field=models.TextField(blank=True, editable=False, verbose_name="auth config (encrypted)"),
        ),
        migrations.AddField(
            model_name="integration",
            name="auth_config_keys",
            field=models.JSONField(blank=True, default=list, editable=False, verbose_name="auth config keys"),
        ),
        migrations.AddField(
            model_name="integration",
            name="options",
            field=models.JSONField(blank=True, default=dict, help_text='Provider settings that are not secret, e.g. {"to": ["ops@example.com"]} for SMTP.', verbose_name="options"),
        ),
        migrations.AddField(
            model_name="integration",
            name="rate_limit_per_second",
            field=models.FloatField(blank=True, help_text="Messages per second to this integration, shared by every worker (blank: the default).", null=True, validators=[django.core.validators.MinValueValidator(0.01)], verbose_name="rate limit per second"),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="method",
            field=models.CharField(blank=True, help_text="The provider method called.", max_length=50, verbose_name="method"),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="message_type",
            field=models.CharField(choices=[("sync", "Synchronous"), ("async", "Asynchronous")], default="async", max_length=10, verbose_name="message type"),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=200, verbose_name="idempotency key"),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="result",
            field=models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, help_text="What the provider answered.", null=True, verbose_name="result"),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="excerpt",
            field=models.CharField(blank=True, help_text="The start of the provider's answer, scrubbed.", max_length=200, verbose_name="excerpt"),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="integration", name="kind"),
        migrations.RemoveField(model_name="integration", name="target"),
        migrations.RemoveField(model_name="integration", name="secret"),
        migrations.AlterField(
            model_name="integration",
            name="integration_id",
            field=models.CharField(help_text="The caller's stable slug, e.g. crm_salesforce (lower case, digits, _ and -).", max_length=100, unique=True, verbose_name="integration id"),
        ),
        migrations.AlterField(
            model_name="integration",
            name="name",
            field=models.CharField(max_length=100, verbose_name="name"),
        ),
        migrations.AlterField(
            model_name="integration",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=6, help_text="Tries per message before it is dead-lettered.", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(20)], verbose_name="max attempts"),
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="status",
            field=models.CharField(choices=[("pending", "Pending"), ("sending", "Sending"), ("delivered", "Delivered"), ("failed", "Failed"), ("dead", "Dead-lettered")], default="pending", max_length=20, verbose_name="status"),
        ),
    ]
