"""Orders and behaviour events from the brand's other systems (mall, POS, mini-program, shops),
each attached to a profile (``profiles.Profile``) by identity resolution at import.

Idempotent on the source's ids: an order is (source, order_no), an event (source, event_id); a
re-import of the same rows changes nothing, a changed row updates the stored one (a refund is the
same order with a new status and ``refunded_amount``).

``OrderItem`` repeats the order's profile and paid time, so "bought category X in the last N days"
is one index range. Events are stored compactly: the type is a small-int foreign key, the
properties JSON.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Order(models.Model):
    class Status(models.TextChoices):
        PAID = "paid", _("已支付")
        PART_REFUNDED = "part_refunded", _("部分退款")
        REFUNDED = "refunded", _("已退款")

    source = models.CharField(max_length=32, blank=True, default="")  # the sending system, e.g. "pos"
    order_no = models.CharField(_("订单号"), max_length=64)
    # indexed by com_order_profile (profile, -paid_at): no second index of its own
    profile = models.ForeignKey("profiles.Profile", on_delete=models.PROTECT, related_name="+", db_index=False)
    keys = models.JSONField(default=dict, blank=True)  # the customer keys as the row gave them
    store_code = models.CharField(_("门店"), max_length=64, blank=True, default="")
    guide_userid = models.CharField(_("导购"), max_length=64, blank=True, default="")  # WeCom account
    guide_name: str | None = None  # not stored: set by selectors.orders_section (None: not a member)
    channel = models.CharField(_("渠道"), max_length=32, blank=True, default="")
    paid_at = models.DateTimeField(_("支付时间"))
    amount = models.DecimalField(_("实付金额"), max_digits=12, decimal_places=2)
    discount = models.DecimalField(_("优惠金额"), max_digits=12, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(_("退款金额"), max_digits=12, decimal_places=2, default=0)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.PAID)
    # a hash of the row as imported: a re-import of an unchanged row is skipped without a write
    digest = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "order_no"], name="com_order_src")]
        indexes = [
            models.Index(fields=["profile", "-paid_at"], name="com_order_profile"),
            models.Index(fields=["paid_at"], name="com_order_paid"),
            models.Index(fields=["updated_at", "id"], name="com_order_updated"),
            # no index on store_code / guide_userid: nothing filters orders by them, and each index
            # costs every import (issue 17)
        ]

    def __str__(self) -> str:
        return self.order_no

    @property
    def net_amount(self):
        return self.amount - self.refunded_amount


class OrderItem(models.Model):
    # no database constraint: items are written only with their order, in its transaction, by
    # services._write_orders (the ids its insert gave), and go only with it (CASCADE is Django's);
    # on PostgreSQL the deferred check of each imported item cost the import ~5 % (issue 17)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_constraint=False)
    profile_id: int
    # the order's profile, repeated (the order's own foreign key holds it to a profile): no database
    # constraint of its own, whose check (and row lock) on PostgreSQL every imported item would pay;
    # PROTECT is Django's (a profile with items is not deleted)
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    paid_at = models.DateTimeField()
    sku = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(_("商品"), max_length=128, blank=True, default="")
    category = models.CharField(_("品类"), max_length=64, blank=True, default="")
    brand = models.CharField(_("品牌"), max_length=64, blank=True, default="")
    quantity = models.IntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        indexes = [
            models.Index(fields=["sku", "paid_at"], name="com_item_sku"),
            models.Index(fields=["category", "paid_at"], name="com_item_cat"),
            models.Index(fields=["brand", "paid_at"], name="com_item_brand"),
            models.Index(fields=["profile", "paid_at"], name="com_item_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.sku or self.name} x{self.quantity}"


class EventType(models.Model):
    """Built-in types (browse_product, add_to_cart, coupon_claimed, coupon_redeemed, link_clicked,
    store_visit, points_change) are created by the migration; a new code seen in an import is
    added as a custom type."""

    code = models.CharField(max_length=32, unique=True)
    label = models.CharField(max_length=64, blank=True, default="")
    builtin = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.label or self.code


class Event(models.Model):
    source = models.CharField(max_length=32, blank=True, default="")
    event_id = models.CharField(max_length=64)
    type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+", db_index=False)
    profile = models.ForeignKey("profiles.Profile", on_delete=models.PROTECT, related_name="+", db_index=False)
    at = models.DateTimeField()
    props = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="com_event_src")]
        indexes = [
            models.Index(fields=["type", "at"], name="com_event_type"),
            models.Index(fields=["profile", "-at"], name="com_event_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.type_id} at {self.at}"


class ImportJob(models.Model):
    """A file import (members, orders or events) run by the worker, with its progress; the
    per-row errors are written to ``errors_path`` (a CSV the console offers for download)."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("会员")
        ORDERS = "orders", _("订单")
        EVENTS = "events", _("行为事件")

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("导入中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    path = models.CharField(max_length=512)  # the uploaded file under the var directory
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    errors_path = models.CharField(max_length=512, blank=True, default="")
    # orders files: guide accounts that are not WeCom members (services.Result.unknown_guides)
    unknown_guides = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="com_import_recent")]

    def __str__(self) -> str:
        return f"import {self.kind} {self.filename} ({self.status})"
