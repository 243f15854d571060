"""REST API for employees (成员), within the caller's DataScope, with their customer counts."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Query, Router, Schema

from siyu.accounts.permissions import scope_of
from siyu.core.api_schemas import responses
from siyu.core.inputs import DbId, InputSchema
from siyu.org import selectors

router = Router(tags=["employees"])


class EmployeeQuery(InputSchema):
    department: DbId | None = Field(None, description="WeCom department id (its subtree)")
    include_left: bool = Field(False, description="include employees who left the corp")
    contact_only: bool = Field(False, description="only employees with the customer-contact function")


class EmployeeOut(Schema):
    userid: str
    name: str
    position: str
    status: int
    contact_enabled: bool
    main_department: int | None
    departments: list[int]
    resigned_at: datetime | None
    active_customers: int
    lost_customers: int
    groups: int


@router.get(
    "/employees",
    response=responses(list[EmployeeOut]),
    summary="Employees within the caller's scope, with customer counts",
)
def list_employees(request, query: Query[EmployeeQuery]):
    scope = scope_of(request)
    employees = selectors.employees_for_scope(
        scope, department_id=query.department, include_left=query.include_left, contact_only=query.contact_only
    )
    counts = selectors.employee_counts([e.id for e in employees]) if employees else {}
    zero = {"active": 0, "lost": 0, "groups": 0}
    return [
        {
            "userid": e.userid,
            "name": e.name,
            "position": e.position,
            "status": e.status,
            "contact_enabled": e.contact_enabled,
            "main_department": e.main_department_id,
            "departments": [m.department_id for m in e.memberships.all()],
            "resigned_at": e.resigned_at,
            "active_customers": counts.get(e.id, zero)["active"],
            "lost_customers": counts.get(e.id, zero)["lost"],
            "groups": counts.get(e.id, zero)["groups"],
        }
        for e in employees
    ]
