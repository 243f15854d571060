"""REST endpoints of the commerce app."""

from ninja import Router

router = Router(tags=["commerce"])
