"""REST endpoints of the profiles app."""

from ninja import Router

router = Router(tags=["profiles"])
