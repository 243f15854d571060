"""Schemas shared by every REST module (siyu.api and the apps' api.py): the one error body, the
error answers each route documents in its ``response=``, and the offset-paged list answer (the
query side is ``siyu.core.inputs.Offset``). No app defines its own.

Every answer that is not a success is JSON ``{"detail": ...}``: a text, or for 422 from request
validation pydantic's list of problems."""

from __future__ import annotations

from typing import Any

from ninja import Schema

# the statuses any authenticated route can answer: 400 a body that is not JSON; 401 no/invalid
# token; 403 the console session's CSRF check or an account without a role; 422 a parameter or
# body that fails its schema
COMMON = (400, 401, 403, 422)


class Error(Schema):
    detail: str | list[Any]
    errcode: int | None = None


class OffsetPage(Schema):
    """The paging fields of an offset-paged list answer; each list adds its ``items``."""

    count: int
    offset: int
    limit: int


def responses(ok: Any = None, *errors: int, status: int = 200) -> dict[int, Any]:
    """``response=`` for a route: ``ok`` at ``status`` (None: any JSON body, or none for a 204), then ``Error`` for
    the common statuses and each of ``errors``."""
    out: dict[int, Any] = {status: ok if ok is not None or status == 204 else Any}
    for code in sorted(set(COMMON) | set(errors)):
        out[code] = Error
    return out
