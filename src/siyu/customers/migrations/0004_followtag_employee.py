"""FollowTag.employee: the tagged relation's employee, repeated (as ``customer`` is) so that a
scoped viewer's tag filters count only the tags on their scope's relations in one index range."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_relation_customer_added_index"),
        ("org", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="followtag",
            name="employee",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="org.employee",
            ),
        ),
        migrations.RunSQL(
            "UPDATE customers_followtag SET employee_id = (SELECT r.employee_id FROM customers_followrelation r"
            " WHERE r.id = customers_followtag.relation_id)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="followtag",
            name="employee",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="org.employee"
            ),
        ),
        migrations.AddIndex(
            model_name="followtag",
            index=models.Index(fields=["tag", "employee", "customer"], name="cust_followtag_emp"),
        ),
    ]
