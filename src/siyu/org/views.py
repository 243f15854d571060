"""员工 (employees): the department tree with each employee's customers and groups, within the
viewer's data scope."""

from __future__ import annotations

from django.shortcuts import render

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.core import inputs, pickers
from siyu.org import selectors


@role_required()
def employee_list(request):
    include_left = request.GET.get("left") == "1"
    tree = selectors.employee_tree(data_scope(request.user), include_left=include_left)
    return render(request, "org/employees.html", {"tree": tree, "include_left": include_left})


# --- picker endpoints (siyu.core.pickers): JSON, scoped by the selectors ----------------------
@role_required()
def pick_employees(request):
    by = "userid" if request.GET.get("by") == "userid" else "id"
    items, more = selectors.search_employees(
        data_scope(request.user),
        pickers.query(request.GET),
        department_id=inputs.query_id(request.GET, "dept"),
        by=by,
        limit=pickers.SEARCH_LIMIT,
    )
    return pickers.respond(items, more=more)


@role_required()
def pick_departments(request):
    items, more = selectors.search_departments(
        data_scope(request.user), pickers.query(request.GET), limit=pickers.SEARCH_LIMIT
    )
    return pickers.respond(items, more=more)


@role_required()
def department_tree(request):
    return pickers.json_response({"nodes": selectors.department_tree(data_scope(request.user))})
