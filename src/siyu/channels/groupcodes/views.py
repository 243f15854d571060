"""Console pages of group QR codes (群活码) and group welcome templates (入群欢迎语): lists, create,
edit, delete. Thin: the forms validate, the services write (and call WeCom), the selectors read."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.channels import forms, preview
from siyu.channels.groupcodes import selectors, services
from siyu.wecom import errcodes, gateway
from siyu.wecom.media import services as media_services

MANAGE = ("admin", "operator")


@role_required(*MANAGE)
def group_list(request):
    form = forms.GroupCodeForm(
        request.POST or None, scope=data_scope(request.user), template_choices=selectors.template_choices()
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.create_group_code(
                d["name"],
                chat_ids=d["chat_ids"],
                auto_create=d["auto_create"],
                room_base_name=d.get("room_base_name") or "",
                welcome_text=d.get("welcome_text") or "",
                welcome_template=selectors.welcome_template(int(d["welcome_template"]))
                if d.get("welcome_template")
                else None,
            )
            messages.success(request, _("群活码已创建"))
            return redirect("channels:groups")
        except gateway.WeComAPIError as e:
            form.add_error(None, _("企业微信返回错误：%(e)s") % {"e": errcodes.explain_error(e)})
    return render(request, "channels/groups.html", {"form": form, "rows": selectors.group_code_rows()})


def _save_template(request, form, t=None):
    d = form.cleaned_data
    user = request.user.get_username()
    try:
        if t is None:
            return services.create_template(
                d["name"], d.get("text") or "", form.attachment(user), notify=bool(d.get("notify")), created_by=user
            )
        return services.update_template(t, d["name"], d.get("text") or "", form.attachment(user))
    except (services.TemplateError, media_services.MediaError) as e:
        form.add_error(None, str(e))  # our own refusal, already in words
    except gateway.WeComAPIError as e:
        form.add_error(None, _("企业微信返回错误：%(e)s") % {"e": errcodes.explain_error(e)})
    return None


def _page(form, t) -> dict:
    return {
        "form": form,
        "rows": selectors.welcome_templates(),
        "template": t,
        "preview": preview.for_form("group_welcome"),
    }


@role_required(*MANAGE)
def template_list(request):
    form = forms.GroupWelcomeTemplateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and _save_template(request, form) is not None:
        messages.success(request, _("入群欢迎语已创建"))
        return redirect("channels:group_welcomes")
    return render(request, "channels/group_welcomes.html", _page(form, None))


@role_required(*MANAGE)
def template_edit(request, pk: int):
    t = selectors.welcome_template(pk)
    if t is None:
        raise Http404
    form = forms.GroupWelcomeTemplateForm(
        request.POST or None,
        request.FILES or None,
        initial={"name": t.name, "text": t.text, "notify": t.notify},
        attachments=[t.attachment] if t.attachment else [],
    )
    if request.method == "POST" and form.is_valid() and _save_template(request, form, t) is not None:
        messages.success(request, _("已保存"))
        return redirect("channels:group_welcomes")
    return render(request, "channels/group_welcomes.html", _page(form, t))


@role_required(*MANAGE)
@require_POST
def template_delete(request, pk: int):
    t = selectors.welcome_template(pk)
    if t is None:
        raise Http404
    try:
        services.delete_template(t)
        messages.success(request, _("已删除"))
    except gateway.WeComAPIError as e:
        messages.error(request, _("企业微信返回错误：%(e)s") % {"e": errcodes.explain_error(e)})
    return redirect("channels:group_welcomes")
