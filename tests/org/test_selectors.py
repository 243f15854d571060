"""Fast layer (no emulator): the department tree's selectors and each scope's employees, on an
org written straight into the database."""

from __future__ import annotations

import pytest

from siyu.accounts.selectors import DataScope
from siyu.org import selectors
from tests.helpers import org_tree

pytestmark = pytest.mark.django_db

EVERYTHING = DataScope(everything=True)


def test_a_subtree_is_the_department_and_everything_below_it():
    people = org_tree()
    assert set(selectors.subtree(2).values_list("id", flat=True)) == {2, 3}
    assert set(selectors.subtree(1).values_list("id", flat=True)) == {1, 2, 3, 4}
    assert not selectors.subtree(99).exists()
    assert selectors.employee_ids_in_subtree(2) == {people[u].id for u in ("east", "store", "gone")}
    assert selectors.employee_ids_in_subtree(99) == set()


def test_each_scope_sees_its_own_employees():
    people = org_tree()
    assert selectors.employee_ids_for_scope(EVERYTHING) is None
    assert selectors.employee_ids_for_scope(DataScope(department_id=2)) == selectors.employee_ids_in_subtree(2)
    assert selectors.employee_ids_for_scope(DataScope(wecom_userid="west")) == {people["west"].id}
    assert selectors.employee_ids_for_scope(DataScope()) == set()
    # placeholders never, those who left only on demand
    assert [e.userid for e in selectors.employees_for_scope(EVERYTHING)] == ["boss", "east", "store", "west"]
    assert [e.userid for e in selectors.employees_for_scope(DataScope(department_id=2), include_left=True)] == [
        "east",
        "gone",
        "store",
    ]
    assert [e.userid for e in selectors.employees_for_scope(EVERYTHING, department_id=4)] == ["west"]
    assert selectors.employees_for_scope(DataScope()) == []
    assert selectors.employee_count(DataScope(department_id=2)) == 2


def test_no_employee_count_before_the_org_is_synced():
    assert selectors.employee_count(EVERYTHING) is None


def test_departments_per_scope_and_the_tree_in_wecoms_order():
    org_tree()
    assert [d["id"] for d in selectors.department_choices(EVERYTHING)] == [1, 2, 3, 4]
    assert [d["id"] for d in selectors.department_choices(DataScope(department_id=2))] == [2, 3]
    assert selectors.department_choices(DataScope(wecom_userid="east")) == []
    assert list(selectors.departments_for_scope(DataScope(wecom_userid="store")).values_list("id", flat=True)) == [3]
    tree = selectors.employee_tree(EVERYTHING)
    # siblings larger order first: West (20) before East (10)
    assert [(row["department"].id, row["level"], row["indent"]) for row in tree] == [
        (1, 0, 0),
        (4, 1, 20),
        (2, 1, 20),
        (3, 2, 40),
    ]
    store = tree[-1]
    assert [e["employee"].userid for e in store["employees"]] == ["store"]
    with_left = selectors.employee_tree(EVERYTHING, include_left=True)[-1]
    assert sorted(e["employee"].userid for e in with_left["employees"]) == ["gone", "store"]
    # a store manager's tree starts at their department
    assert [row["department"].id for row in selectors.employee_tree(DataScope(department_id=2))] == [2, 3]
