"""REST API of the transfers app (mounted by siyu.api)."""

from ninja import Router

router = Router(tags=["transfers"])
