"""Pickers: a form field whose widget shows the chosen items as chips (names, the id as secondary
text) and finds more through a server-side search, instead of a text box for typed ids.

The core knows no app. An app registers each of its sources from its ``AppConfig.ready()``::

    from siyu.core import pickers
    pickers.register("employees", search_url_name="org:pick-employees", resolve=selectors.employee_items)

``resolve(values, scope)`` returns ``{value: Item}`` for the values that exist *and* lie in the
viewer's data scope: the field renders initial and posted values as names with it, and cleaning
refuses a value it leaves out (a forged or foreign id is a form error, never a silent write).
The search endpoint (the app's view, scoped by its selectors) answers ``GET ?q=&dept=`` with
``{"items": [Item, ...], "more": bool}``.

A form binds the viewer's scope to its picker fields once (``pickers.bind(form, scope)``); a picker
field that was never bound refuses to clean or render (a programming error, caught by tests).

The widget's behaviour lives in ``static/siyu/pickers.js`` (``[data-picker]``): chips, a debounced
search, results picked with the keyboard or the mouse, hidden inputs carrying the values, and an
optional department tree (``tree_url_name``) that filters the search or is itself the choice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from django import forms
from django.http import JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

MAX_ITEMS = 100  # the most values one picker takes (WeCom's contact way: 100 users)
SEARCH_LIMIT = 20  # the most items one search answers
TAG_LIMIT = 200  # tags come grouped: a whole library of a few groups in one answer
VALUE_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")


class Item(TypedDict):
    value: str
    label: str  # the name a person reads
    sub: str  # secondary text (an account, an id, an owner)
    group: str  # a heading the results are grouped under ("" for none)


Resolver = Callable[[Sequence[str], Any], dict[str, Item]]


def item(value: object, label: str, sub: str = "", group: str = "") -> Item:
    return {"value": str(value), "label": label, "sub": sub, "group": group}


@dataclass(frozen=True)
class Source:
    key: str
    search_url_name: str
    resolve: Resolver
    params: tuple[tuple[str, str], ...] = ()  # fixed query parameters of the search (e.g. by=userid)
    tree_url_name: str | None = None  # a department tree beside the search
    value_re: re.Pattern[str] = VALUE_RE

    def search_url(self) -> str:
        url = reverse(self.search_url_name)
        return f"{url}?{urlencode(self.params)}" if self.params else url

    def tree_url(self) -> str:
        return reverse(self.tree_url_name) if self.tree_url_name else ""


_SOURCES: dict[str, Source] = {}


def register(
    key: str,
    *,
    search_url_name: str,
    resolve: Resolver,
    params: Iterable[tuple[str, str]] = (),
    tree_url_name: str | None = None,
    value_pattern: str | None = None,
) -> Source:
    """Add (or replace) the source ``key``."""
    src = Source(
        key,
        search_url_name,
        resolve,
        tuple(params),
        tree_url_name,
        re.compile(value_pattern) if value_pattern else VALUE_RE,
    )
    _SOURCES[key] = src
    return src


def source(key: str) -> Source:
    try:
        return _SOURCES[key]
    except KeyError:
        raise LookupError(f"no picker source {key!r} registered (an app's ready() registers it)") from None


class _Unbound:
    def __repr__(self) -> str:
        return "UNBOUND"


UNBOUND: Any = _Unbound()


def bind(form: forms.BaseForm, scope: Any) -> None:
    """Give every picker field of ``form`` the viewer's data scope (its search and checks use it)."""
    for field in form.fields.values():
        if isinstance(field, PickerField):
            field.scope = scope
            field.widget.scope = scope


def split_values(value: Any) -> list[str]:
    """Posted values as a list of strings: several inputs of one name, or one comma-separated text."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = re.split(r"[\s,，]+", value)
    elif isinstance(value, (list, tuple)):
        parts = []
        for v in value:
            parts.extend(re.split(r"[\s,，]+", str(v)) if isinstance(v, str) else [str(v)])
    else:
        parts = [str(value)]
    return list(dict.fromkeys(p.strip() for p in parts if p is not None and str(p).strip()))


class PickerWidget(forms.Widget):
    template_name = "core/widgets/picker.html"

    def __init__(
        self,
        source_key: str,
        *,
        multiple: bool = True,
        tree: str = "",
        placeholder: str = "",
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs)
        self.source_key = source_key
        self.multiple = multiple
        self.tree = tree  # "" none, "filter": the tree narrows the search, "pick": a department is the choice
        self.placeholder = placeholder
        self.scope: Any = UNBOUND

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if hasattr(data, "getlist"):
            values = data.getlist(name)
        else:
            raw = data.get(name)
            values = raw if isinstance(raw, (list, tuple)) else ([] if raw is None else [raw])
        values = split_values(values)
        if self.multiple or len(values) > 1:
            return values  # several values for a single choice: the field refuses them
        return values[0] if values else ""

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False  # an empty picker posts nothing: that means "none chosen"

    def format_value(self, value: Any) -> list[str]:  # type: ignore[override]
        return split_values(value)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        src = source(self.source_key)
        values = self.format_value(value)
        if self.scope is UNBOUND:
            raise RuntimeError(f"picker widget of {self.source_key!r} rendered without pickers.bind(form, scope)")
        found = src.resolve(values, self.scope) if values else {}
        chosen = [found.get(v) or item(v, str(_("未知或无权查看")), v) for v in values]
        context["picker"] = {
            "source": src.key,
            "search_url": src.search_url(),
            "tree_url": src.tree_url() if self.tree else "",
            "tree": self.tree,
            "multiple": self.multiple,
            "chosen": chosen,
            "placeholder": self.placeholder or (_("搜索并选择") if self.multiple else _("搜索并选择一项")),
        }
        return context


class PickerField(forms.Field):
    """Values picked from a registered source, checked against the viewer's scope. Cleans to a list
    of ``coerce(value)`` (``multiple``) or one value / None."""

    widget = PickerWidget
    default_error_messages = {
        "invalid": _("无效的选择：%(value)s"),
        "unknown": _("不存在或不在您的数据范围内：%(value)s"),
        "too_many": _("最多选择 %(n)s 项"),
    }

    def __init__(
        self,
        source_key: str,
        *,
        multiple: bool = True,
        max_items: int = MAX_ITEMS,
        coerce: Callable[[str], Any] = str,
        tree: str = "",
        placeholder: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("widget", PickerWidget(source_key, multiple=multiple, tree=tree, placeholder=placeholder))
        super().__init__(**kwargs)
        self.source_key = source_key
        self.multiple = multiple
        self.max_items = max_items
        self.coerce = coerce
        self.scope: Any = UNBOUND

    def to_python(self, value: Any) -> list[str]:
        return split_values(value)

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def clean(self, value: Any) -> Any:
        values = self.to_python(value)
        self.validate(values)
        if not self.multiple and len(values) > 1:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many", params={"n": 1})
        if len(values) > self.max_items:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many", params={"n": self.max_items})
        src = source(self.source_key)
        for v in values:
            if not src.value_re.match(v):
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"value": v[:64]})
        if values and self.scope is UNBOUND:
            raise RuntimeError(f"picker field of {self.source_key!r} used without pickers.bind(form, scope)")
        found = src.resolve(values, self.scope) if values else {}
        missing = [v for v in values if v not in found]
        if missing:
            raise forms.ValidationError(
                self.error_messages["unknown"], code="unknown", params={"value": "、".join(missing[:5])}
            )
        out = [self.coerce(v) for v in values]
        if self.multiple:
            return out
        return out[0] if out else None

    def has_changed(self, initial: Any, data: Any) -> bool:
        return split_values(initial) != split_values(data)


def as_json(items: Iterable[Item], *, more: bool = False) -> dict[str, Any]:
    """The search endpoint's answer."""
    return {"items": list(items), "more": more}


def respond(items: Iterable[Item], *, more: bool = False) -> JsonResponse:
    """The search endpoint's answer as a response (names as UTF-8, not ``\\u`` escapes)."""
    return json_response(as_json(items, more=more))


def json_response(data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


def query(params: Any, name: str = "q", max_length: int = 64) -> str:
    """The search text of a request's query string, trimmed and bounded."""
    return str(params.get(name, "") or "").strip()[:max_length]
