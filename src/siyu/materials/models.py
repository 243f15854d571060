"""The guide's library: scripts (话术) and materials (素材) headquarters prepares for the sidebar.

A script is text with variables ({nickname}, {employee}, {store}) filled for the chat it is sent
in. A material is what WeCom's sendChatMessage can send: text, an image / video / file (a stored
media: ``siyu.wecom.media`` uploads it to WeCom and keeps its 3-day media id fresh), a link card
(sent as a trackable short link), a mini-program card. Both are filed in categories and may be
limited to departments (empty: every department). Each send from the sidebar is a ``Use``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    class Kind(models.TextChoices):
        SCRIPT = "script", _("话术")
        MATERIAL = "material", _("素材")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(_("分类名"), max_length=32)
    order = models.IntegerField(_("排序"), default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="materials_category_name")]

    def __str__(self) -> str:
        return self.name


class Script(models.Model):
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(_("标题"), max_length=64)
    content = models.TextField(_("内容"))
    departments = models.JSONField(default=list, blank=True)  # WeCom department ids; [] = everyone
    active = models.BooleanField(_("启用"), default=True)
    uses = models.IntegerField(default=0)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    preview: str = ""  # not stored: the text as sent in one chat (the sidebar's list)

    def __str__(self) -> str:
        return self.title


class Material(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", _("文本")
        IMAGE = "image", _("图片")
        LINK = "link", _("链接")
        MINIPROGRAM = "miniprogram", _("小程序")
        VIDEO = "video", _("视频")
        FILE = "file", _("文件")
        POSTER = "poster", _("海报")  # a background image; each guide sends it with their own QR code

    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(_("标题"), max_length=64)
    description = models.CharField(_("描述"), max_length=512, blank=True, default="")
    text = models.TextField(_("文本内容"), blank=True, default="")
    url = models.CharField(_("链接地址"), max_length=2048, blank=True, default="")
    media = models.IntegerField(null=True, blank=True)  # siyu.wecom StoredMedia id (image, video, file, poster)
    cover = models.IntegerField(null=True, blank=True)  # StoredMedia id of a link's or mini-program's cover
    appid = models.CharField(_("小程序 AppID"), max_length=64, blank=True, default="")
    page = models.CharField(_("小程序页面"), max_length=512, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)  # free labels for search ["新品", "婚嫁"]
    departments = models.JSONField(default=list, blank=True)
    active = models.BooleanField(_("启用"), default=True)
    uses = models.IntegerField(default=0)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class Use(models.Model):
    """One send of a script or a material from the sidebar (counted per guide)."""

    class Item(models.TextChoices):
        SCRIPT = "script", _("话术")
        MATERIAL = "material", _("素材")

    item = models.CharField(max_length=8, choices=Item.choices)
    item_id = models.IntegerField()
    employee_userid = models.CharField(max_length=64)
    chat_type = models.CharField(max_length=8, blank=True, default="")  # single | group
    chat_key = models.CharField(max_length=64, blank=True, default="")  # external_userid or chat_id
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["item", "item_id", "at"], name="materials_use_item"),
            models.Index(fields=["employee_userid", "at"], name="materials_use_employee"),
        ]

    def __str__(self) -> str:
        return f"{self.item} {self.item_id} by {self.employee_userid}"
