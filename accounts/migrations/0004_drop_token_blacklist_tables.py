"""simplejwt's token_blacklist app is no longer installed: its outstanding-token table kept every
refresh token in full, readable by anyone who could read the table. Drop both of its tables (and its
migration records, so installing the app again would start clean). Reversing creates nothing."""

from django.db import migrations

TABLES = ("token_blacklist_blacklistedtoken", "token_blacklist_outstandingtoken")  # children first


def drop_token_tables(apps, schema_editor):
    connection = schema_editor.connection
    existing = set(connection.introspection.table_names())
    for table in TABLES:
        if table in existing:
            schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(table)}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["token_blacklist"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_alter_auditevent_action")]

    operations = [migrations.RunPython(drop_token_tables, migrations.RunPython.noop)]
