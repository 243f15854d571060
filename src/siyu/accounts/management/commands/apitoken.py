"""``siyu apitoken create --user U --name N`` | ``list`` | ``revoke ID``: REST API tokens.

A token acts as its owner (role and data scope). ``create`` prints the token once: only its
SHA-256 digest is stored.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from siyu.accounts import selectors, services


class Command(BaseCommand):
    help = "Create, list or revoke REST API tokens (a token acts with its owner's role and data scope)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it (shown only once)")
        create.add_argument("--user", required=True, help="the owner's username")
        create.add_argument("--name", required=True, help="what the token is for")
        sub.add_parser("list", help="list tokens (never the tokens themselves)")
        revoke = sub.add_parser("revoke", help="revoke a token by id")
        revoke.add_argument("id", type=int)

    def handle(self, *args, **opts):
        action = opts["action"]
        if action == "create":
            try:
                user = get_user_model().objects.get(username=opts["user"])
            except get_user_model().DoesNotExist as e:
                raise CommandError(f"no user {opts['user']!r}") from e
            try:
                row, token = services.create_api_token(user, opts["name"])
            except ValidationError as e:
                raise CommandError("; ".join(e.messages)) from e
            self.stderr.write(f"token {row.id} {row.name!r} for {user.username!r} (shown once, store it now):")
            self.stdout.write(token)
        elif action == "list":
            for t in selectors.api_tokens():
                state = "revoked" if t.revoked else "active"
                used = t.last_used_at.isoformat() if t.last_used_at else "never"
                self.stdout.write(f"{t.id}\t{t.prefix}…\t{t.user.username}\t{state}\tlast used {used}\t{t.name}")
        elif action == "revoke":
            if not services.revoke_api_token(opts["id"]):
                raise CommandError(f"no active token {opts['id']}")
            self.stdout.write(f"token {opts['id']} revoked")
