"""Gateway state: connection settings, access tokens, the API call log and the callback inbox."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.wecom.fields import EncryptedTextField


class WeComSettings(models.Model):
    """Console overrides of the WECOM_* environment settings (one row). Blank = use the environment.

    The secrets, the callback token and the AES key are encrypted at rest (``siyu.wecom.fields``)."""

    corp_id = models.CharField(_("企业ID (CorpID)"), max_length=64, blank=True, default="")
    api_base = models.CharField(_("API 地址"), max_length=255, blank=True, default="")
    contact_secret = EncryptedTextField(_("客户联系 Secret"), blank=True, default="")
    app_secret = EncryptedTextField(_("自建应用 Secret"), blank=True, default="")
    agent_id = models.CharField(_("自建应用 AgentID"), max_length=32, blank=True, default="")
    callback_token = EncryptedTextField(_("回调 Token"), blank=True, default="")
    callback_aes_key = EncryptedTextField(_("回调 EncodingAESKey"), blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"WeCom settings {self.corp_id or '(environment)'}"  # never a secret


class AccessToken(models.Model):
    """A cached access token per (corp, secret). The secret itself is never stored: only its hash."""

    key = models.CharField(max_length=128, primary_key=True)
    value = models.TextField()
    expires_at = models.FloatField()

    def __str__(self) -> str:
        return f"access token {self.key}"  # the key is a hash; never the token itself


class ApiCall(models.Model):
    """One call to WeCom: what, when, how it ended. Shown in the console's gateway log."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    corp_id = models.CharField(max_length=64)
    secret_kind = models.CharField(max_length=16)  # contact | app
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=128, db_index=True)
    errcode = models.IntegerField(null=True, db_index=True)  # null: no JSON answer (network/HTTP error)
    errmsg = models.CharField(max_length=512, blank=True, default="")
    http_status = models.IntegerField(null=True)
    duration_ms = models.IntegerField(default=0)
    attempt = models.IntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["errcode", "-id"], name="wecom_apicall_err")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} errcode={self.errcode}"


class CallbackInbox(models.Model):
    """A decrypted callback, stored before WeCom gets its answer, then processed by a worker."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待处理")
        DONE = "done", _("已处理")
        FAILED = "failed", _("失败")
        IGNORED = "ignored", _("已忽略")

    PENDING, DONE, FAILED, IGNORED = Status.PENDING, Status.DONE, Status.FAILED, Status.IGNORED  # older names
    STATUS = Status.choices

    received_at = models.DateTimeField(auto_now_add=True)
    dedupe_key = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64)
    change_type = models.CharField(max_length=64, blank=True, default="")
    create_time = models.BigIntegerField(default=0)
    payload = models.TextField()  # the decrypted XML, exactly as received
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    repeats = models.IntegerField(default=0)  # re-queued by an identical re-read event (store._insert)
    run_after = models.FloatField(default=0)  # unix time: leased until / retry not before
    locked_by = models.CharField(max_length=64, blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # Set at accept time (inbox.priority_of): > 0 for events that must not wait behind a backlog,
    # e.g. an add carrying a WelcomeCode (valid 20 s). Claimed first, by a dedicated worker thread.
    priority = models.SmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["status", "run_after", "id"], name="wecom_inbox_ready"),
            models.Index(fields=["status", "priority", "run_after"], name="wecom_inbox_urgent"),
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.change_type} [{self.status}]"


class CallbackRejection(models.Model):
    """A callback request refused before it reached the inbox (bad signature, malformed body)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.CharField(max_length=32)  # signature | malformed | corp_id | config
    status_code = models.IntegerField()
    remote_addr = models.CharField(max_length=64, blank=True, default="")
    detail = models.CharField(max_length=512, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.reason} ({self.status_code})"


class StoredMedia(models.Model):
    """A file an operator uploaded once (welcome attachments, mini-program covers, group welcome
    images...), kept here so the product can hand it to WeCom whenever a message needs it.

    WeCom's temporary media ids live 3 days (media/upload, contract part 2 §6.1); Moments need
    their own ids from media/upload_attachment (attachment_type 1, §6.2). Both are cached with the
    time of their upload and uploaded again before they expire (``siyu.wecom.media.services``):
    an operator never sees or types a media id."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("图片")
        VIDEO = "video", _("视频")
        FILE = "file", _("文件")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=128)
    content_type = models.CharField(max_length=100, blank=True, default="")
    size = models.IntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    data = models.BinaryField()
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # the last time a message needed this file: the refresh timer keeps ids fresh only for
    # media in use (a welcome must not wait for an upload in its 20 s window)
    last_used_at = models.FloatField(default=0)
    # media/upload (temporary media)
    media_id = models.CharField(max_length=128, blank=True, default="")
    uploaded_at = models.FloatField(default=0)
    # media/upload_attachment, attachment_type 1 (Moments)
    moment_media_id = models.CharField(max_length=128, blank=True, default="")
    moment_uploaded_at = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
