"""REST API of the broadcasts app (mounted by siyu.api)."""

from ninja import Router

router = Router(tags=["broadcasts"])
