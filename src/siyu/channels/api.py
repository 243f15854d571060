"""REST API of the channels app (mounted by siyu.api)."""

from ninja import Router

router = Router(tags=["channels"])
