"""Fast layer (no emulator): the pickers' employee and department searches, scoped by role and
bounded, on an org written straight into the database."""

from __future__ import annotations

import pytest

from siyu.accounts.selectors import DataScope
from siyu.org import selectors
from siyu.org.models import Employee, EmployeeDepartment
from tests.helpers import org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)
MANAGER = DataScope(department_id=2)  # East and its Store
GUIDE = DataScope(wecom_userid="west")


def labels(rows):
    return [r["label"] for r in rows]


def test_employee_search_by_name_or_account_within_the_scope():
    org_tree()
    assert labels(selectors.search_employees(EVERYTHING, "")[0]) == ["Boss", "East", "Store", "West"]  # never left
    assert labels(selectors.search_employees(EVERYTHING, "st")[0]) == ["East", "Store", "West"]
    assert labels(selectors.search_employees(EVERYTHING, "WEST")[0]) == ["West"]  # any case
    # a store manager finds only their subtree's members, a guide only themselves
    assert labels(selectors.search_employees(MANAGER, "")[0]) == ["East", "Store"]
    assert labels(selectors.search_employees(MANAGER, "west")[0]) == []
    assert labels(selectors.search_employees(GUIDE, "")[0]) == ["West"]
    assert selectors.search_employees(DataScope(), "")[0] == []


def test_employee_search_by_department_subtree_and_values():
    people = org_tree()
    rows, more = selectors.search_employees(EVERYTHING, "", department_id=2)
    assert labels(rows) == ["East", "Store"] and not more
    assert selectors.search_employees(EVERYTHING, "", department_id=99) == ([], False)
    row = selectors.search_employees(EVERYTHING, "store")[0][0]
    assert row == {"value": str(people["store"].id), "label": "Store", "sub": "store", "group": ""}
    assert selectors.search_employees(EVERYTHING, "store", by="userid")[0][0]["value"] == "store"


def test_employee_search_is_bounded():
    org_tree()
    for i in range(30):
        e = Employee.objects.create(userid=f"xu{i:02}", name=f"许{i:02}", contact_enabled=True)
        EmployeeDepartment.objects.create(employee=e, department_id=3)
    rows, more = selectors.search_employees(EVERYTHING, "许", limit=20)
    assert len(rows) == 20 and more
    assert labels(rows)[:2] == ["许00", "许01"]
    rows, more = selectors.search_employees(MANAGER, "许", limit=50)
    assert len(rows) == 30 and not more


def test_employee_items_name_the_values_in_scope_only():
    people = org_tree()
    ids = [str(people[u].id) for u in ("east", "west", "ph")] + ["999999", "x"]
    assert set(selectors.employee_items(ids, EVERYTHING)) == {str(people["east"].id), str(people["west"].id)}
    assert set(selectors.employee_items(ids, MANAGER)) == {str(people["east"].id)}
    found = selectors.employee_items(["store", "west", "nobody"], MANAGER, by="userid")
    assert list(found) == ["store"] and found["store"]["label"] == "Store"
    # one who left still has a name (an old code's list), marked as such
    assert "已离职" in selectors.employee_items(["gone"], EVERYTHING, by="userid")["gone"]["sub"]


def test_department_tree_search_and_items_per_scope():
    org_tree()
    tree = selectors.department_tree(EVERYTHING)
    assert [(n["id"], n["parent"]) for n in tree] == [(1, None), (4, 1), (2, 1), (3, 2)]
    # a store manager's tree starts at their department
    assert [(n["id"], n["parent"]) for n in selectors.department_tree(MANAGER)] == [(2, None), (3, 2)]
    assert labels(selectors.search_departments(EVERYTHING, "st")[0]) == ["East", "Store", "West"]
    assert labels(selectors.search_departments(MANAGER, "")[0]) == ["East", "Store"]
    rows, more = selectors.search_departments(EVERYTHING, "", limit=2)
    assert len(rows) == 2 and more
    assert selectors.department_items(["3"], EVERYTHING)["3"]["sub"] == "East · ID 3"
    assert set(selectors.department_items(["1", "3", "4", "abc", "9" * 30], MANAGER)) == {"3"}


def test_owner_name_search_for_other_pickers():
    people = org_tree()
    assert selectors.employee_ids_named("") == []
    assert set(selectors.employee_ids_named("st")) == {people[u].id for u in ("east", "store", "west")}
