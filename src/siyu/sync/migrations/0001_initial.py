"""SyncRun, moved from the customers app: created in this app's state only, on the table it
already has (``customers_syncrun``, made by ``customers.0001_initial``), so existing runs stay."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("customers", "0005_syncrun_to_sync_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SyncRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("running", "进行中"),
                                    ("done", "完成"),
                                    ("failed", "中断"),
                                    ("abandoned", "已放弃"),
                                ],
                                db_index=True,
                                default="running",
                                max_length=10,
                            ),
                        ),
                        ("phase", models.CharField(default="org", max_length=12)),
                        ("state", models.JSONField(default=dict)),
                        ("counts", models.JSONField(default=dict)),
                        ("totals", models.JSONField(default=dict)),
                        ("started_at", models.DateTimeField()),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("owner", models.CharField(blank=True, default="", max_length=128)),
                        ("resumes", models.IntegerField(default=0)),
                        ("error", models.TextField(blank=True, default="")),
                    ],
                    options={
                        "db_table": "customers_syncrun",
                        "ordering": ["-id"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
