"""``siyu createadmin --username U --password P``: create or reset a console admin (idempotent)."""

from __future__ import annotations

import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from siyu.accounts import services


class Command(BaseCommand):
    help = "Create a console admin, or reset an existing user to admin with this password (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("SIYU_ADMIN_USERNAME", "admin"))
        parser.add_argument(
            "--password",
            default=os.environ.get("SIYU_ADMIN_PASSWORD", ""),
            help="the password (or the SIYU_ADMIN_PASSWORD variable)",
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, **opts):
        if not opts["password"]:
            raise CommandError("--password (or SIYU_ADMIN_PASSWORD) is required")
        try:
            user, created = services.ensure_admin(opts["username"], opts["password"], opts["email"])
        except ValidationError as e:
            raise CommandError("; ".join(e.messages)) from e
        verb = "created" if created else "updated"
        self.stdout.write(f"admin {user.username!r} {verb}")
