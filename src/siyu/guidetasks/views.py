"""Console pages of guide tasks: the rules (add, edit, preview, run now) and the task board."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.core import inputs
from siyu.guidetasks import selectors, services, tasks
from siyu.guidetasks.forms import RuleForm
from siyu.guidetasks.models import Task

MANAGERS = ("admin", "operator", "store_manager")


def _save(request, form: RuleForm, rule=None):
    scope = data_scope(request.user)
    try:
        return services.save_rule(
            form.to_input(),
            rule=rule,
            operator=request.user.username,
            department_id=None if scope.everything else scope.department_id,
        )
    except services.RuleError as e:
        form.add_error(None, str(e))
        return None


@role_required(*MANAGERS)
def rule_list(request):
    scope = data_scope(request.user)
    form = RuleForm(scope=scope)
    if request.method == "POST":
        form = RuleForm(request.POST, scope=scope)
        if form.is_valid():
            rule = _save(request, form)
            if rule is not None:
                if rule.kind == "campaign":
                    tasks.generate_rule.enqueue(rule.id)
                    messages.success(request, _("运营任务已创建，正在分配给导购。"))
                else:
                    messages.success(request, _("任务规则已添加，每天早上 6 点生成当天的任务。"))
                return redirect("guidetasks:rule", rule.id)
    rules = list(selectors.rules(scope))
    stats = selectors.rule_stats([r.id for r in rules])
    for r in rules:
        r.stats = stats.get(r.id, {"total": 0, "done": 0, "open": 0, "overdue": 0})
    return inputs.refused_if_invalid(render(request, "guidetasks/rules.html", {"rules": rules, "form": form}), form)


@role_required(*MANAGERS)
def rule_detail(request, pk: int):
    scope = data_scope(request.user)
    rule = selectors.rule_for(scope, pk)
    if rule is None:
        raise Http404
    form = RuleForm(initial=RuleForm.initial_of(rule), scope=scope)
    if request.method == "POST":
        form = RuleForm(request.POST, scope=scope)
        if form.is_valid() and _save(request, form, rule) is not None:
            messages.success(request, _("任务规则已保存。"))
            return redirect("guidetasks:rule", rule.id)
    context = {
        "rule": rule,
        "form": form,
        "stats": selectors.rule_stats([rule.id]).get(rule.id, {"total": 0, "done": 0, "open": 0, "overdue": 0}),
        "preview": services.preview(rule) if rule.active and rule.kind != "campaign" else None,
        "tasks": selectors.board(scope, status="", rule_id=rule.id, limit=50),
    }
    return inputs.refused_if_invalid(render(request, "guidetasks/rule.html", context), form)


@role_required(*MANAGERS)
@require_POST
def rule_run(request, pk: int):
    rule = selectors.rule_for(data_scope(request.user), pk)
    if rule is None:
        raise Http404
    tasks.generate_rule.enqueue(rule.id)
    messages.success(request, _("已开始生成任务，稍后刷新页面查看。"))
    return redirect("guidetasks:rule", rule.id)


@role_required(*MANAGERS)
@require_POST
def rule_delete(request, pk: int):
    rule = selectors.rule_for(data_scope(request.user), pk)
    if rule is None:
        raise Http404
    services.delete_rule(rule)
    messages.success(request, _("规则已停用，未完成的任务已取消。"))
    return redirect("guidetasks:rules")


STATUSES = (("open", gettext_lazy("待完成")), ("overdue", gettext_lazy("已逾期")), ("done", gettext_lazy("已完成")))


@role_required(*MANAGERS)
def board(request):
    scope = data_scope(request.user)
    status = request.GET.get("status", "open")
    if status not in dict(STATUSES):
        status = "open"
    rule_id = inputs.query_id(request.GET, "rule")
    context = {
        "tasks": selectors.board(scope, status=status, rule_id=rule_id),
        "status": status,
        "statuses": STATUSES,
        "rules": list(selectors.rules(scope)),
        "rule_id": rule_id,
        "outcomes": dict(Task.Outcome.choices),
    }
    return render(request, "guidetasks/board.html", context)
