"""Order attribution (业绩归因): which guide, store and channel each order counts for, and why.

The rules, in order: the guide named on the order; else the guide whose trackable link the
customer clicked within ``CLICK_DAYS`` before paying; else the customer's most recent follow
relation that was active when they paid. The store is the order's, else the guide's store; the
channel is that relation's channel code. An order is attributed again whenever it changes (a
refund): its net amount follows. Commission rules (a percent by store, by category, or the default)
are applied when a report is read, so a changed rule applies to the whole month shown; a rule by
guide tier (A/B/C, from the month's leaderboard) comes after the category's and before the store's.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Attribution(models.Model):
    class Reason(models.TextChoices):
        ORDER_GUIDE = "order_guide", _("订单上的导购")
        LINK_CLICK = "link_click", _("点击了导购发送的链接")
        RELATION = "relation", _("付款时的跟进导购")
        NONE = "none", _("无法归因")

    order_id = models.BigIntegerField(unique=True)  # siyu.commerce Order
    paid_at = models.DateTimeField(db_index=True)
    guide_userid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    department_id = models.BigIntegerField(null=True, blank=True)  # the guide's store (department)
    store = models.CharField(max_length=64, blank=True, default="")  # the order's store code, if any
    channel = models.CharField(max_length=64, blank=True, default="")  # the relation's state (channel code)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    link_id = models.BigIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"order {self.order_id} → {self.guide_userid or '-'} ({self.reason})"


class CommissionRule(models.Model):
    class Scope(models.TextChoices):
        DEFAULT = "default", _("默认")
        STORE = "store", _("门店")
        TIER = "tier", _("导购等级")
        CATEGORY = "category", _("品类")

    scope = models.CharField(_("适用范围"), max_length=16, choices=Scope.choices)
    value = models.CharField(_("门店编码、导购等级或品类"), max_length=64, blank=True, default="")
    percent = models.DecimalField(_("提成比例 (%)"), max_digits=5, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "value"], name="attribution_rule_once")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.value} {self.percent}%"
