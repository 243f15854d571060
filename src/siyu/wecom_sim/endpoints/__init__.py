"""The emulated ``/cgi-bin/`` endpoints, one module per area of the WeCom API.

Importing this package registers every endpoint with ``siyu.wecom_sim.framework.REGISTRY``.
"""

from siyu.wecom_sim.endpoints import (  # noqa: F401
    auth,
    contact_ways,
    customers,
    demo,
    groups,
    identity,
    live,
    mall,
    mass,
    media,
    messages,
    moments,
    org,
    org_control,
    scans,
    stats,
    tags,
    transfers,
)
