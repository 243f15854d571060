"""Console page of group QR codes (群活码): the list and the create form. Thin: the form validates,
the service writes (and calls WeCom), the selector reads."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.accounts.permissions import role_required
from siyu.accounts.selectors import data_scope
from siyu.channels import forms
from siyu.channels.groupcodes import selectors, services
from siyu.wecom import gateway

MANAGE = ("admin", "operator")


@role_required(*MANAGE)
def group_list(request):
    form = forms.GroupCodeForm(request.POST or None, scope=data_scope(request.user))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.create_group_code(
                d["name"],
                chat_ids=d["chat_ids"],
                auto_create=d["auto_create"],
                room_base_name=d.get("room_base_name") or "",
                welcome_text=d.get("welcome_text") or "",
            )
            messages.success(request, _("群活码已创建"))
            return redirect("channels:groups")
        except gateway.WeComAPIError as e:
            form.add_error(None, _("企业微信返回错误：%(e)s") % {"e": e})
    return render(request, "channels/groups.html", {"form": form, "rows": selectors.group_code_rows()})
