"""Reading the org: employees by userid, department subtrees."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from siyu.org.models import Department, Employee, EmployeeDepartment


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


def employee_ids_in_subtree(department_id: int) -> set[int]:
    """Employees belonging to a department or any department below it (any of their departments)."""
    root = Department.objects.filter(id=department_id).values_list("path", flat=True).first()
    if root is None:
        return set()
    return set(
        EmployeeDepartment.objects.filter(department__path__startswith=root).values_list("employee_id", flat=True)
    )


def employee_ids_for_scope(scope) -> set[int] | None:
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


def employee_count(scope) -> int | None:
    """Active employees within the viewer's scope (None when the org has not been synced)."""
    if not Employee.objects.exists():
        return None
    ids = employee_ids_for_scope(scope)
    qs = active_employees()
    return qs.count() if ids is None else qs.filter(id__in=ids).count()
