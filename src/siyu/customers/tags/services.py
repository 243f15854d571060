"""Tag management from the console (客户标签): every change goes to WeCom first, through the
gateway and outside any transaction; the local copy is then refreshed from WeCom's answer with
the sync's upsert (``services.apply_tag_groups``), so the console never shows a tag WeCom does
not have. The ``change_external_tag`` callbacks WeCom may send for the same change find the rows
already in that state (the handlers are upserts).

Failures raise ``TagChangeError`` with WeCom's errcode and a readable message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from siyu.customers import services
from siyu.customers.models import Tag, TagGroup
from siyu.customers.services import JSON
from siyu.customers.tags import selectors as tag_selectors
from siyu.wecom import errcodes, gateway

# WeCom's order values are unsigned 32-bit (doc 92117: "有效的值范围是[0, 2^32)").
ORDER_MAX = 2**32 - 1


def _meaning(errcode: int | None) -> str:
    """Readable causes of the tag endpoints' errors. 40071 / 40072 are the emulator's (and, as
    far as the docs show, WeCom's) codes for a bad or duplicate name and a name over 30
    characters (part 1 §3, mapping unverified); the rest come from the shared table."""
    local = {
        40071: _("名称无效或与已有名称重复"),
        40072: _("名称过长，最多 30 个字符"),
        40068: _("标签或标签组不存在（可能已在企业微信中删除）"),
        40126: _("企业标签个数已达上限"),
    }
    if errcode in local:
        return local[errcode]
    return str(errcodes.meaning(errcode) or "")


@dataclass
class TagChangeError(Exception):
    errcode: int | None
    errmsg: str

    @property
    def message(self) -> str:
        meaning = _meaning(self.errcode)
        return _("企业微信拒绝了此操作（errcode %(code)s：%(meaning)s）。") % {
            "code": "—" if self.errcode is None else self.errcode,
            "meaning": meaning or self.errmsg,
        }

    def __str__(self) -> str:
        return self.message


def _call(fn: Callable[..., JSON], *args: Any, **kwargs: Any) -> JSON:
    try:
        answer: JSON = fn(*args, **kwargs)  # wechatpy's methods are untyped
        return answer
    except gateway.WeComAPIError as e:
        raise TagChangeError(e.errcode, e.errmsg) from e


def _clean_names(names: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for n in names:
        n = (n or "").strip()
        if n and n not in out:
            out.append(n)
    return out


def split_names(text: str) -> list[str]:
    """Tag names typed one per line or separated by commas (, ， 、)."""
    for sep in ("，", "、", ","):
        text = text.replace(sep, "\n")
    return _clean_names(text.splitlines())


def refresh_groups(group_ids: list[str], client: gateway.WeComClient | None = None) -> JSON:
    """Re-read these groups from WeCom and store what it says (a group it no longer lists, and
    tags it no longer lists in them, are marked deleted)."""
    groups = services.fetch_tag_groups(group_ids=group_ids, client=client)
    return services.apply_tag_groups(groups, scope_group_ids=group_ids)


def refresh_all(client: gateway.WeComClient | None = None) -> JSON:
    return services.apply_tag_groups(services.fetch_tag_groups(client=client), full=True)


def create_group(name: str, tag_names: list[str], client: gateway.WeComClient | None = None) -> TagGroup:
    """A new tag group with its first tags (WeCom cannot create an empty group). The group sorts
    first among the groups (the highest order)."""
    client = client or gateway.contact()
    names = _clean_names(tag_names)
    if not names:
        raise TagChangeError(40058, _("标签组至少需要一个标签"))
    top = TagGroup.objects.filter(deleted=False).order_by("-order").values_list("order", flat=True).first() or 0
    order = min(top + 1, ORDER_MAX)
    count = len(names)
    tags = [{"name": n, "order": count - i} for i, n in enumerate(names)]
    res = _call(client.external_contact.add_corp_tag, None, (name or "").strip(), order, tags)
    group_id = res["tag_group"]["group_id"]
    refresh_groups([group_id], client)
    return TagGroup.objects.get(group_id=group_id)


def add_tags(group_id: str, tag_names: list[str], client: gateway.WeComClient | None = None) -> list[Tag]:
    """Tags appended (after the group's current tags) to a group."""
    client = client or gateway.contact()
    names = _clean_names(tag_names)
    if not names:
        raise TagChangeError(40058, _("请填写标签名称"))
    low = (
        Tag.objects.filter(group__group_id=group_id, deleted=False)
        .order_by("order")
        .values_list("order", flat=True)
        .first()
    )
    # new tags go last: below the lowest order in the group (never below 0)
    base = max(0, (low if low is not None else len(names) + 1) - 1)
    tags = [{"name": n, "order": max(0, base - i)} for i, n in enumerate(names)]
    res = _call(client.external_contact.add_corp_tag, group_id, None, None, tags)
    refresh_groups([group_id], client)
    ids = [t["id"] for t in res["tag_group"].get("tag") or []]
    return list(Tag.objects.filter(tag_id__in=ids))


def ensure_tags(group_pk: int, tag_names: Iterable[str]) -> dict[str, int] | None:
    """The tags named ``tag_names`` in the group ``group_pk`` (row ids by name), the missing ones
    created through WeCom first: for apps that keep tags of their own in a group (insights' mirror,
    a Moment's segment tag). None when the group is gone. Calls WeCom: never inside a transaction."""
    wanted = list(dict.fromkeys(tag_names))
    found = tag_selectors.group_tags(group_pk)
    if found is None:
        return None
    group_id, by_name = found
    missing = [n for n in wanted if n not in by_name]
    if missing:
        add_tags(group_id, missing)
        found = tag_selectors.group_tags(group_pk)
        if found is None:
            return None
        by_name = found[1]
    return {n: by_name[n] for n in wanted if n in by_name}


def rename(obj_id: str, name: str, client: gateway.WeComClient | None = None) -> None:
    """Rename a tag or a tag group (``obj_id`` is either)."""
    client = client or gateway.contact()
    _call(client.external_contact.edit_corp_tag, obj_id, name=(name or "").strip())
    tag = Tag.objects.filter(tag_id=obj_id).select_related("group").first()
    refresh_groups([tag.group.group_id if tag else obj_id], client)


def _reordered(ids: list[str], obj_id: str, direction: str) -> list[str]:
    i = ids.index(obj_id)
    j = i - 1 if direction == "up" else i + 1
    if j < 0 or j >= len(ids):
        return ids
    ids = list(ids)
    ids[i], ids[j] = ids[j], ids[i]
    return ids


def move(obj_id: str, direction: str, client: gateway.WeComClient | None = None) -> bool:
    """Move a tag within its group, or a group among the groups, one place up or down. WeCom
    sorts larger orders first, so the new sequence gets orders n..1; only the entries whose order
    changes are written (edit_corp_tag)."""
    client = client or gateway.contact()
    tag = Tag.objects.filter(tag_id=obj_id, deleted=False).select_related("group").first()
    if tag is not None:
        rows = list(
            Tag.objects.filter(group=tag.group, deleted=False).order_by("-order", "id").values_list("tag_id", "order")
        )
    else:
        rows = list(TagGroup.objects.filter(deleted=False).order_by("-order", "id").values_list("group_id", "order"))
    ids = [r[0] for r in rows]
    if obj_id not in ids:
        raise TagChangeError(40068, "unknown id")
    new = _reordered(ids, obj_id, direction)
    if new == ids:
        return False
    current = dict(rows)
    n = len(new)
    for i, oid in enumerate(new):
        if current[oid] != n - i:
            _call(client.external_contact.edit_corp_tag, oid, order=n - i)
    if tag is not None:
        refresh_groups([tag.group.group_id], client)
    else:
        refresh_all(client)
    return True


def delete_tag(tag_id: str, client: gateway.WeComClient | None = None) -> None:
    """Delete one tag (WeCom removes it from every customer; a group losing its last tag goes)."""
    client = client or gateway.contact()
    group_id = Tag.objects.filter(tag_id=tag_id).values_list("group__group_id", flat=True).first()
    _call(client.external_contact.del_corp_tag, tag_id=[tag_id])
    services.delete_tags([tag_id])
    if group_id:
        refresh_groups([group_id], client)


def delete_group(group_id: str, client: gateway.WeComClient | None = None) -> None:
    client = client or gateway.contact()
    _call(client.external_contact.del_corp_tag, group_id=[group_id])
    services.delete_tag_groups([group_id])
