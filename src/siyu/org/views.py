"""员工 (employees): the department tree with each employee's customers and groups, within the
viewer's data scope."""

from __future__ import annotations

from django.shortcuts import render

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.org import selectors


@role_required()
def employee_list(request):
    include_left = request.GET.get("left") == "1"
    tree = selectors.employee_tree(data_scope(request.user), include_left=include_left)
    return render(request, "org/employees.html", {"tree": tree, "include_left": include_left})
