"""SyncRun moves to the ``sync`` app: removed from this app's state only, its table
(``customers_syncrun``) and rows stay; ``sync.0001_initial`` adopts them."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_followtag_employee"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SyncRun")],
            database_operations=[],
        ),
    ]
