"""Trackable links (链接追踪): every link a guide sends is a short link of ours, bound to what was sent
(the material), who sent it and to whom (a customer in a 1:1 chat, or a group); a click redirects
at once and is stored, then becomes a ``link_clicked`` event on the customer's profile."""

from __future__ import annotations

from django.db import models


class Link(models.Model):
    target = models.CharField(max_length=2048)
    material_id = models.IntegerField(null=True, blank=True, db_index=True)
    title = models.CharField(max_length=64, blank=True, default="")
    employee_userid = models.CharField(max_length=64, db_index=True)
    external_userid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    chat_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.title or self.target} ({self.employee_userid})"


class Click(models.Model):
    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    at = models.DateTimeField()
    user_agent = models.CharField(max_length=255, blank=True, default="")
    # turned into the customer's ``link_clicked`` event (``services.publish_clicks``)
    published = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["link", "at"], name="links_click_link"),
            models.Index(fields=["published", "id"], name="links_click_unpublished"),
        ]

    def __str__(self) -> str:
        return f"click {self.id} on link {self.link_id}"
