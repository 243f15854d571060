"""The built-in event types (docs/cdp.md "events"); other codes are added as custom types on import."""

from django.db import migrations

BUILTIN = [
    ("browse_product", "浏览商品"),
    ("add_to_cart", "加入购物车"),
    ("coupon_claimed", "领取优惠券"),
    ("coupon_redeemed", "核销优惠券"),
    ("link_clicked", "点击链接"),
    ("store_visit", "到店"),
    ("points_change", "积分变动"),
]


def add(apps, schema_editor):
    EventType = apps.get_model("commerce", "EventType")
    for code, label in BUILTIN:
        EventType.objects.update_or_create(code=code, defaults={"label": label, "builtin": True})


def remove(apps, schema_editor):
    apps.get_model("commerce", "EventType").objects.filter(code__in=[c for c, _ in BUILTIN], builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("commerce", "0002_initial")]

    operations = [migrations.RunPython(add, remove)]
