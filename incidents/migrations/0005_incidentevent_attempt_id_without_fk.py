"""IncidentEvent.attempt was a foreign key to orchestrator.CallAttempt: the record depended on the
engine. It becomes a plain attempt_id column. The column (attempt_id, bigint) and its index stay, so
every timeline row keeps the call it was about; only the foreign-key constraint is dropped.

The state forgets the relation and learns a BigIntegerField of the same column; the database
operation drops the constraint (AlterField to db_constraint=False) and keeps the data."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0004_explicit_states'),
        ('orchestrator', '0002_explicit_states'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name='incidentevent',
                    name='attempt',
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        db_constraint=False,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name='events',
                        to='orchestrator.callattempt',
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name='incidentevent', name='attempt'),
                migrations.AddField(
                    model_name='incidentevent',
                    name='attempt_id',
                    field=models.BigIntegerField(blank=True, db_index=True, null=True),
                ),
            ],
        ),
    ]
