"""Reading the org: employees by userid, department subtrees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from django.db.models import Q, QuerySet

from siyu.accounts.selectors import DataScope

# re-exported: the row types other apps annotate with
from siyu.org.models import Department as Department
from siyu.org.models import Employee as Employee
from siyu.org.models import EmployeeDepartment

# An employee's status (WeCom's own codes), for other apps that compare ``employee.status``.
EmployeeStatus = Employee.Status


def employees_by_ids(ids: Iterable[int] | QuerySet[Any, Any]) -> QuerySet[Employee]:
    """The employees whose ids are in ``ids`` (a list or a subquery), by name."""
    return Employee.objects.filter(id__in=ids).order_by("name", "userid")


def names_by_userid(userids: Iterable[str]) -> dict[str, str]:
    """userid → display name for the given userids (unknown ones are left out)."""
    userids = set(userids)
    return dict(Employee.objects.filter(userid__in=userids).values_list("userid", "name")) if userids else {}


def employee_ids(userids: Iterable[str] | None = None) -> dict[str, int]:
    """Employee ids by userid (all employees when ``userids`` is None)."""
    qs = Employee.objects.all() if userids is None else Employee.objects.filter(userid__in=list(userids))
    return dict(qs.values_list("userid", "id"))


def contact_employees() -> QuerySet[Employee]:
    """Active members with the customer-contact function: the followers WeCom lists customers for."""
    return Employee.objects.filter(contact_enabled=True, status=Employee.STATUS_ACTIVE)


def active_employees() -> QuerySet[Employee]:
    """Members who have not left (WeCom's lists show theirs, e.g. their customer groups)."""
    return Employee.objects.filter(status=Employee.STATUS_ACTIVE)


def subtree(department_id: int) -> QuerySet[Department]:
    """A department and every department below it."""
    root = Department.objects.filter(id=department_id).values_list("path", flat=True).first()
    if root is None:
        return Department.objects.none()
    return Department.objects.filter(path__startswith=root)


class EmployeeChoice(TypedDict):
    id: int
    name: str
    userid: str


class DepartmentChoice(TypedDict):
    id: int
    name: str
    depth: int


def employee_choices(ids: Iterable[int] | None = None) -> list[EmployeeChoice]:
    """Employees for a filter's choices (``id``, ``name``, ``userid``), by name; only ``ids``
    unless None. Placeholders (userids seen before the org sync) are left out."""
    qs = Employee.objects.filter(placeholder=False).order_by("name", "userid")
    if ids is not None:
        qs = qs.filter(id__in=sorted(ids))
    return list(qs.values("id", "name", "userid"))


def department_choices(scope: DataScope) -> list[DepartmentChoice]:
    """The departments a ``DataScope`` may filter by (``id``, ``name``, ``depth``), in tree order."""
    if scope.everything:
        qs = Department.objects.all()
    elif scope.department_id is not None:
        qs = subtree(scope.department_id)
    else:
        qs = Department.objects.none()
    return list(qs.order_by("path").values("id", "name", "depth"))


def employee_ids_in_subtree(department_id: int) -> set[int]:
    """Employees belonging to a department or any department below it (any of their departments)."""
    root = Department.objects.filter(id=department_id).values_list("path", flat=True).first()
    if root is None:
        return set()
    return set(
        EmployeeDepartment.objects.filter(department__path__startswith=root).values_list("employee_id", flat=True)
    )


def employee_ids_for_scope(scope: DataScope) -> set[int] | None:
    """The employees whose customers a ``DataScope`` may see; None means everyone's.

    A store manager sees the members of their department subtree, a shopping guide themselves.
    """
    if scope.everything:
        return None
    if scope.department_id is not None:
        return employee_ids_in_subtree(scope.department_id)
    if scope.wecom_userid:
        return set(Employee.objects.filter(userid=scope.wecom_userid).values_list("id", flat=True))
    return set()


def employee_count(scope: DataScope) -> int | None:
    """Active employees within the viewer's scope (None when the org has not been synced)."""
    if not Employee.objects.exists():
        return None
    ids = employee_ids_for_scope(scope)
    qs = active_employees()
    return qs.count() if ids is None else qs.filter(id__in=ids).count()


# --- the console's employee page -------------------------------------------------------------
def departments_for_scope(scope: DataScope) -> QuerySet[Department]:
    """Departments the viewer may browse: all, a store manager's subtree, or a guide's own
    departments."""
    if scope.everything:
        return Department.objects.all()
    if scope.department_id is not None:
        return subtree(scope.department_id)
    if scope.wecom_userid:
        return Department.objects.filter(memberships__employee__userid=scope.wecom_userid).distinct()
    return Department.objects.none()


# Per-employee counts owned by other apps (customers: active/lost relations, groups: groups
# owned), registered from their ready(): they depend on org, so org never imports them.
EmployeeCounter = Callable[[list[int] | None], dict[int, dict[str, int]]]
_COUNTERS: dict[str, EmployeeCounter] = {}


def provide_employee_counts(name: str, fn: EmployeeCounter) -> None:
    """``fn(employee_ids or None) -> {employee_id: {key: n}}``, merged into ``employee_counts``."""
    _COUNTERS[name] = fn


def employee_counts(employee_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """Per employee: active customers, lost customers (relations that ended) and active groups
    owned."""
    ids = None if employee_ids is None else list(employee_ids)
    out: dict[int, dict[str, int]] = {}
    for fn in _COUNTERS.values():
        for eid, counts in fn(ids).items():
            slot = out.setdefault(eid, {"active": 0, "lost": 0, "groups": 0})
            for k, n in counts.items():
                slot[k] = slot.get(k, 0) + n
    return out


class EmployeeRow(TypedDict):
    employee: Employee
    leader: bool  # a leader of this department
    active: int
    lost: int
    groups: int


class DepartmentNode(TypedDict):
    department: Department
    level: int
    indent: int
    employees: list[EmployeeRow]
    active: int
    lost: int
    groups: int


def employee_tree(scope: DataScope, *, include_left: bool = False) -> list[DepartmentNode]:
    """The departments the viewer may see, in tree order (WeCom's order among siblings, larger
    first), each with its employees (in scope) and their customer and group counts.

    An employee in several departments is listed in each; the department's totals count its own
    members only.
    """
    depts = list(departments_for_scope(scope))
    allowed = employee_ids_for_scope(scope)
    # tree order: siblings by WeCom's order (larger first), then id
    by_parent: dict[int | None, list[Department]] = {}
    ids = {d.id for d in depts}
    for d in depts:
        parent = d.parent_id if d.parent_id in ids else None
        by_parent.setdefault(parent, []).append(d)
    for siblings in by_parent.values():
        siblings.sort(key=lambda d: (-d.order, d.id))
    ordered: list[tuple[Department, int]] = []

    def walk(parent: int | None, level: int) -> None:
        for d in by_parent.get(parent, []):
            ordered.append((d, level))
            walk(d.id, level + 1)

    walk(None, 0)

    members = EmployeeDepartment.objects.filter(department_id__in=ids).select_related("employee")
    if allowed is not None:
        members = members.filter(employee_id__in=allowed)
    if not include_left:
        members = members.exclude(employee__status=Employee.STATUS_LEFT)
    per_dept: dict[int, list[tuple[Employee, bool]]] = {}
    emp_ids: set[int] = set()
    for m in members.order_by("-is_leader", "-order", "employee__name", "employee__userid"):
        per_dept.setdefault(m.department_id, []).append((m.employee, m.is_leader))
        emp_ids.add(m.employee_id)
    counts = employee_counts(emp_ids) if emp_ids else {}
    zero = {"active": 0, "lost": 0, "groups": 0}
    out: list[DepartmentNode] = []
    for d, level in ordered:
        employees: list[EmployeeRow] = []
        for e, leader in per_dept.get(d.id, []):
            n = counts.get(e.id, zero)
            employees.append(
                {"employee": e, "leader": leader, "active": n["active"], "lost": n["lost"], "groups": n["groups"]}
            )
        out.append(
            {
                "department": d,
                "level": level,
                "indent": level * 20,
                "employees": employees,
                "active": sum(e["active"] for e in employees),
                "lost": sum(e["lost"] for e in employees),
                "groups": sum(e["groups"] for e in employees),
            }
        )
    return out


def employees_for_scope(
    scope: DataScope, *, department_id: int | None = None, include_left: bool = False, contact_only: bool = False
) -> list[Employee]:
    """The employees the viewer may see (placeholders never), by userid, with their memberships;
    optionally within one department's subtree, without those who left, only contact members."""
    allowed = employee_ids_for_scope(scope)
    qs = Employee.objects.filter(placeholder=False).prefetch_related("memberships").order_by("userid")
    if allowed is not None:
        qs = qs.filter(id__in=sorted(allowed))
    if scope.nothing:
        qs = qs.none()
    if department_id is not None:
        qs = qs.filter(id__in=sorted(employee_ids_in_subtree(department_id)))
    if not include_left:
        qs = qs.exclude(status=Employee.STATUS_LEFT)
    if contact_only:
        qs = qs.filter(contact_enabled=True)
    return list(qs)


# --- reads other apps use (broadcasts, channels, transfers) ----------------------------------
def employee_names(ids: Iterable[int]) -> dict[int, str]:
    """Employee id → display name for ``ids`` (unknown ids are left out)."""
    ids = [i for i in set(ids) if i]
    return dict(Employee.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def employee_userids(ids: Iterable[int] | None = None) -> dict[int, str]:
    """Employee id → userid for ``ids`` (every employee when None)."""
    qs = Employee.objects.all() if ids is None else Employee.objects.filter(id__in=[i for i in set(ids) if i])
    return dict(qs.values_list("id", "userid"))


def employee_by_userid(userid: str) -> Employee | None:
    """The employee ``userid`` (with their main department), None if unknown."""
    return Employee.objects.filter(userid=userid).select_related("main_department").first()


def employee_by_id(employee_id: int) -> Employee | None:
    return Employee.objects.filter(id=employee_id).first()


def main_department_id(userid: str) -> int | None:
    """The main department of ``userid`` (None if unknown or without one)."""
    return Employee.objects.filter(userid=userid).values_list("main_department_id", flat=True).first()


def department_names(ids: Iterable[int]) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    return dict(Department.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def visible_employees(scope: DataScope) -> QuerySet[Employee]:
    """The employees (placeholders never) a ``DataScope`` covers, as a queryset to narrow further."""
    ids = employee_ids_for_scope(scope)
    qs = Employee.objects.filter(placeholder=False)
    return qs if ids is None else qs.filter(id__in=ids)


def contact_member_userids(department_id: int) -> list[str]:
    """Active members with the customer-contact function in a department and the departments
    below it (a store's guides), by userid."""
    dept = Department.objects.filter(id=department_id).first()
    if dept is None:
        return []
    ids = [
        dept.id,
        *Department.objects.filter(path__startswith=f"{dept.path}{dept.id}/").values_list("id", flat=True),
    ]
    return list(
        Employee.objects.filter(memberships__department_id__in=ids, status=Employee.STATUS_ACTIVE, contact_enabled=True)
        .order_by("userid")
        .values_list("userid", flat=True)
        .distinct()
    )


def contact_member_ids(department_ids: list[int], exclude: set[int] | None = None) -> list[int]:
    """Active members with the customer-contact function in those departments (by path: and
    their sub-departments), ids sorted."""
    paths = list(Department.objects.filter(id__in=department_ids).values_list("path", flat=True))
    if not paths:
        return []
    q = Q()
    for p in paths:
        q |= Q(department__path__startswith=p)
    ids = (
        EmployeeDepartment.objects.filter(q, employee__status=Employee.STATUS_ACTIVE, employee__contact_enabled=True)
        .values_list("employee_id", flat=True)
        .distinct()
    )
    return sorted(set(ids) - (exclude or set()))


def manager_of(employee: Employee) -> str:
    """Whom to tell about ``employee``'s lost customers: their first active direct leader
    (user/get ``direct_leader``), else a leader of their main department (``is_leader_in_dept`` /
    ``department_leader``), else a leader of the nearest ancestor department. Never themselves.
    "" when nobody is found."""

    def active(uids: Iterable[str]) -> list[str]:
        return list(
            Employee.objects.filter(userid__in=uids, status=Employee.STATUS_ACTIVE).values_list("userid", flat=True)
        )

    leaders = [u for u in (employee.direct_leaders or []) if u != employee.userid]
    found = active(leaders)
    if found:
        return min(found, key=leaders.index)
    dept = employee.main_department
    if dept is None:
        m = employee.memberships.select_related("department").first()
        dept = m.department if m else None
    seen: set[int] = set()
    while dept is not None and dept.id not in seen:
        seen.add(dept.id)
        cands = set(
            EmployeeDepartment.objects.filter(department_id=dept.id, is_leader=True)
            .exclude(employee_id=employee.id)
            .values_list("employee__userid", flat=True)
        )
        cands.update(u for u in (dept.leader_userids or []) if u != employee.userid)
        found = sorted(active(cands))
        if found:
            return found[0]
        dept = Department.objects.filter(id=dept.parentid).first() if dept.parentid else None
    return ""


# --- reads the users page of accounts uses (registered from ready()) ---------------------------
def all_departments() -> list[tuple[int, str, int]]:
    """Every department as ``(id, name, depth)``, in tree order."""
    return [(d["id"], d["name"], d["depth"]) for d in department_choices(DataScope(everything=True))]


def employees_named(text: str) -> list[tuple[str, str, str]]:
    """Employees (not placeholders) whose name or account is exactly ``text``:
    ``[(userid, name, main department's name)]``, at most 20."""
    text = (text or "").strip()
    if not text:
        return []
    qs = (
        Employee.objects.filter(placeholder=False)
        .filter(Q(name=text) | Q(userid=text))
        .select_related("main_department")
        .order_by("name", "userid")[:20]
    )
    return [(e.userid, e.name or e.userid, e.main_department.name if e.main_department else "") for e in qs]


# --- pickers (siyu.core.pickers): search and names, within the viewer's scope -----------------
class PickerRow(TypedDict):
    value: str
    label: str
    sub: str
    group: str


def _scoped_employees(scope: DataScope) -> QuerySet[Employee]:
    """The employees (placeholders never) a ``DataScope`` covers, as one query (subqueries, no id
    lists: a store manager's subtree may hold thousands)."""
    qs = Employee.objects.filter(placeholder=False)
    if scope.everything:
        return qs
    if scope.department_id is not None:
        root = Department.objects.filter(id=scope.department_id).values_list("path", flat=True).first()
        if root is None:
            return qs.none()
        return qs.filter(
            id__in=EmployeeDepartment.objects.filter(department__path__startswith=root).values("employee_id")
        )
    if scope.wecom_userid:
        return qs.filter(userid=scope.wecom_userid)
    return qs.none()


def _employee_row(e: Employee, by: str) -> PickerRow:
    value = e.userid if by == "userid" else str(e.id)
    sub = e.userid if not e.alias else f"{e.userid} · {e.alias}"
    if e.status == Employee.STATUS_LEFT:
        sub = f"{sub} · {Employee.Status.LEFT.label}"
    return {"value": value, "label": e.name or e.userid, "sub": sub, "group": ""}


def search_employees(
    scope: DataScope, q: str, *, department_id: int | None = None, by: str = "id", limit: int = 20
) -> tuple[list[PickerRow], bool]:
    """Active employees within the scope whose name, account or alias contains ``q`` (every one
    when empty), optionally in a department's subtree; by name, at most ``limit`` (and whether
    there are more). ``by``: the value is the employee's id ("id") or account ("userid")."""
    qs = _scoped_employees(scope).filter(status=Employee.STATUS_ACTIVE)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(userid__icontains=q) | Q(alias__icontains=q))
    if department_id is not None:
        root = Department.objects.filter(id=department_id).values_list("path", flat=True).first()
        if root is None:
            return [], False
        qs = qs.filter(
            id__in=EmployeeDepartment.objects.filter(department__path__startswith=root).values("employee_id")
        )
    rows = list(qs.order_by("name", "userid")[: limit + 1])
    return [_employee_row(e, by) for e in rows[:limit]], len(rows) > limit


def employee_items(values: Iterable[str], scope: DataScope, *, by: str = "id") -> dict[str, PickerRow]:
    """The picker rows of ``values`` (employee ids, or accounts with ``by="userid"``) that exist
    within the scope; others are left out."""
    values = [v for v in dict.fromkeys(values) if v]
    if not values:
        return {}
    if by == "userid":
        qs = _scoped_employees(scope).filter(userid__in=values)
    else:
        ids = [int(v) for v in values if v.isdigit() and len(v) < 19]
        qs = _scoped_employees(scope).filter(id__in=ids)
    out = {}
    for e in qs:
        row = _employee_row(e, by)
        out[row["value"]] = row
    return out


class TreeNode(TypedDict):
    id: int
    name: str
    parent: int | None
    sub: str


def department_tree(scope: DataScope) -> list[TreeNode]:
    """The departments the viewer may browse, in tree order (WeCom's order among siblings): the
    pickers' tree (a node's ``parent`` is None at the top of what the viewer sees)."""
    depts = list(departments_for_scope(scope).order_by("depth", "-order", "id").values("id", "name", "parent_id"))
    ids = {d["id"] for d in depts}
    return [
        {
            "id": d["id"],
            "name": d["name"],
            "parent": d["parent_id"] if d["parent_id"] in ids else None,
            "sub": f"ID {d['id']}",
        }
        for d in depts
    ]


def _department_row(d: Department, names: dict[int, str]) -> PickerRow:
    parent = names.get(d.parent_id) if d.parent_id else None
    return {
        "value": str(d.id),
        "label": d.name,
        "sub": f"{parent} · ID {d.id}" if parent else f"ID {d.id}",
        "group": "",
    }


def search_departments(scope: DataScope, q: str, *, limit: int = 20) -> tuple[list[PickerRow], bool]:
    """Departments within the scope whose name contains ``q`` (every one when empty), in tree
    order, at most ``limit``."""
    qs = departments_for_scope(scope)
    if q:
        qs = qs.filter(name__icontains=q)
    rows = list(qs.order_by("path")[: limit + 1])
    names = department_names(d.parent_id for d in rows if d.parent_id)
    return [_department_row(d, names) for d in rows[:limit]], len(rows) > limit


def department_items(values: Iterable[str], scope: DataScope) -> dict[str, PickerRow]:
    """The picker rows of these department ids that the scope may browse."""
    ids = [int(v) for v in dict.fromkeys(values) if v.isdigit() and len(v) < 19]
    if not ids:
        return {}
    rows = list(departments_for_scope(scope).filter(id__in=ids))
    names = department_names(d.parent_id for d in rows if d.parent_id)
    return {str(d.id): _department_row(d, names) for d in rows}


def employee_ids_named(q: str, *, limit: int = 500) -> list[int]:
    """Ids of employees (placeholders never) whose name, account or alias contains ``q`` (other
    apps' pickers search by owner name), at most ``limit``."""
    if not q:
        return []
    qs = Employee.objects.filter(placeholder=False).filter(
        Q(name__icontains=q) | Q(userid__icontains=q) | Q(alias__icontains=q)
    )
    return list(qs.order_by("id").values_list("id", flat=True)[:limit])


def led_department_id(employee: Employee) -> int | None:
    """A department ``employee`` leads (their main department first), None if they lead none."""
    led = list(
        EmployeeDepartment.objects.filter(employee=employee, is_leader=True).values_list("department_id", flat=True)
    )
    if not led:
        return None
    main = employee.main_department_id
    return main if main in led else min(led)


def department_lineage(userid: str) -> set[int]:
    """The departments member ``userid`` belongs to and every department above them (what a
    library item limited to a department reaches); empty for an unknown member."""
    employee = Employee.objects.filter(userid=userid).first()
    if employee is None:
        return set()
    parents = dict(Department.objects.values_list("id", "parentid"))
    out: set[int] = set()
    for dept in EmployeeDepartment.objects.filter(employee=employee).values_list("department_id", flat=True):
        while dept and dept not in out:
            out.add(dept)
            dept = parents.get(dept, 0)
    return out


def home_departments(employee_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Each employee's store: their main department, else the first department they belong to."""
    memberships = EmployeeDepartment.objects.order_by("employee_id", "-is_leader", "id")
    employees = Employee.objects.all()
    if employee_ids is not None:
        ids = list(employee_ids)
        memberships = memberships.filter(employee_id__in=ids)
        employees = employees.filter(id__in=ids)
    out: dict[int, int] = {}
    for eid, dept in memberships.values_list("employee_id", "department_id"):
        out.setdefault(eid, dept)
    for eid, main in employees.exclude(main_department__isnull=True).values_list("id", "main_department_id"):
        out[eid] = main
    return out
