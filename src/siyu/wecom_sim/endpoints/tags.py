"""Corp customer tags (企业客户标签): doc 92117 (manage) and 92118 (mark), rules R8–R10.

Changes made through the API fire ``change_external_tag`` when rule ``tag_api_changes_callback``
is on (default): whether WeCom echoes API-made tag changes to the app is unverified (part 3
§2.3); the default lets the product see console-equivalent changes. Control actions
``/sim/tags/admin_*`` simulate an admin editing tags in the WeCom admin console and always fire.

Fan-out of events (unverified, part 3 §2.3): a new group emits one ``create`` with TagType
``tag_group`` and each new tag one ``create`` with TagType ``tag``; deleting a group emits one
``delete`` for the group; deleting tags emits one per tag, plus one for a group removed because
its last tag went.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.callbacks import emit
from siyu.wecom_sim.control import ControlError, action
from siyu.wecom_sim.endpoints.customers import (
    contact_user,
    get_customer,
    int_param,
    live_tags,
    str_list,
    visible_follow,
)
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint, new_id
from siyu.wecom_sim.models import Follow, Tag, TagGroup

ORDER_MAX = 2**32


def _sorted_groups(groups):
    # order: larger values sort first (doc 92117)
    return sorted(groups, key=lambda g: (-g.order, g.create_time, g.group_id))


def _sorted_tags(tags):
    return sorted(tags, key=lambda t: (-t.order, t.create_time, t.id))


def _check_name(name: Any, what: str) -> str:
    """Names are 1..30 characters (40071 invalid name / 40072 name length; mapping unverified)."""
    if not isinstance(name, str) or not name.strip():
        raise WeComError(40071, f"invalid {what}")
    if len(name) > rules.get().tag_name_max_len:
        raise WeComError(40072, f"{what} longer than {rules.get().tag_name_max_len} characters")
    return name


def _check_order(value: Any, what: str = "order") -> int | None:
    order = int_param(value, what)
    if order is not None and not 0 <= order < ORDER_MAX:
        raise WeComError(40058, f"invalid {what}")
    return order


def live_tag_count() -> int:
    return Tag.objects.filter(deleted=False, group__deleted=False).count()


def _tag_json(t: Tag, with_deleted: bool = True) -> dict:
    d = {"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order}
    if with_deleted:
        d["deleted"] = t.deleted or t.group.deleted
    return d


def _group_json(g: TagGroup, tags: list[Tag], with_deleted: bool = True) -> dict:
    d = {"group_id": g.group_id, "group_name": g.group_name, "create_time": g.create_time, "order": g.order}
    if with_deleted:
        d["deleted"] = g.deleted
    d["tag"] = [_tag_json(t, with_deleted) for t in _sorted_tags(tags)]
    return d


def _tag_event(change: str, obj_id: str, tag_type: str | None, strategy_id: int | None = None) -> None:
    emit("change_external_tag", change, Id=obj_id, TagType=tag_type, StrategyId=strategy_id)


# --- the operations (shared by the API and the admin-console control actions) -------------------


def create_tags(body: dict, now: int, fire: bool) -> dict:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """add_corp_tag (rule R9): into ``group_id``; else into the live group named ``group_name``
    (appending); else a new group. Empty groups cannot be created. Duplicate names collapse to one
    tag, also against the group's existing tags. The answer lists, in request order, one tag per
    distinct requested name (the existing one where the name was already taken)."""
    raw_tags = body.get("tag")
    if not isinstance(raw_tags, list) or not raw_tags:
        raise WeComError(40058, "tag is required: empty tag groups cannot be created")
    wanted: list[tuple[str, int]] = []
    for item in raw_tags:
        if not isinstance(item, dict):
            raise WeComError(40058, "invalid tag")
        name = _check_name(item.get("name"), "tag name")
        order = _check_order(item.get("order")) or 0
        if name not in [n for n, _ in wanted]:
            wanted.append((name, order))
    group_id = body.get("group_id")
    new_group = False
    if group_id:
        group = TagGroup.objects.filter(group_id=group_id, deleted=False).first() if isinstance(group_id, str) else None
        if group is None:
            raise WeComError(40068, "invalid group_id")
    else:
        gname = _check_name(body.get("group_name"), "group_name")
        group = TagGroup.objects.filter(group_name=gname, deleted=False).first()
        if group is None:
            group = TagGroup(
                group_id=new_id("et", 30), group_name=gname, create_time=now, order=_check_order(body.get("order")) or 0
            )
            new_group = True
    existing = {t.name: t for t in Tag.objects.filter(group_id=group.group_id, deleted=False)} if not new_group else {}
    to_create = [(n, o) for n, o in wanted if n not in existing]
    if live_tag_count() + len(to_create) > rules.get().corp_tag_cap:
        raise WeComError(40126)
    if new_group:
        group.save()
    created = {}
    for n, o in to_create:
        created[n] = Tag.objects.create(id=new_id("et", 30), group=group, name=n, create_time=now, order=o)
    if fire:
        if new_group:
            _tag_event("create", group.group_id, "tag_group", group.strategy_id)
        for t in created.values():
            _tag_event("create", t.id, "tag", group.strategy_id)
    result = [created.get(n) or existing[n] for n, _ in wanted]
    return {
        "group_id": group.group_id,
        "group_name": group.group_name,
        "create_time": group.create_time,
        "order": group.order,
        "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order} for t in result],
    }


def edit_tag(body: dict, fire: bool) -> None:
    """edit_corp_tag: ``id`` is a tag or a group id; the new name must not clash with another
    group (for groups) or another tag of the same group (for tags) — 40071, code unverified."""
    obj_id = body.get("id")
    if not obj_id or not isinstance(obj_id, str):
        raise WeComError(40058, "id is required")
    name = _check_name(body["name"], "name") if body.get("name") is not None else None
    order = _check_order(body.get("order"))
    tag = Tag.objects.filter(id=obj_id, deleted=False, group__deleted=False).select_related("group").first()
    if tag is not None:
        if name is not None and name != tag.name:
            if Tag.objects.filter(group_id=tag.group_id, deleted=False, name=name).exclude(id=tag.id).exists():
                raise WeComError(40071, "a tag of this group already has that name")
            tag.name = name
        if order is not None:
            tag.order = order
        tag.save(update_fields=["name", "order"])
        if fire:
            _tag_event("update", tag.id, "tag", tag.group.strategy_id)
        return
    group = TagGroup.objects.filter(group_id=obj_id, deleted=False).first()
    if group is None:
        raise WeComError(40068)
    if name is not None and name != group.group_name:
        if TagGroup.objects.filter(group_name=name, deleted=False).exclude(group_id=group.group_id).exists():
            raise WeComError(40071, "another tag group already has that name")
        group.group_name = name
    if order is not None:
        group.order = order
    group.save(update_fields=["group_name", "order"])
    if fire:
        _tag_event("update", group.group_id, "tag_group", group.strategy_id)


def delete_tags(body: dict, fire: bool) -> dict:
    """del_corp_tag (rule R8): tag_id and group_id not both empty (40058); an unknown or already
    deleted id fails the whole call (40068). A group whose last tag goes is deleted too. Deleted
    tags disappear from every customer (unverified, part 1 §3.4)."""
    tag_ids = str_list(body.get("tag_id"), "tag_id")
    group_ids = str_list(body.get("group_id"), "group_id")
    if not tag_ids and not group_ids:
        raise WeComError(40058, "tag_id and group_id are both empty")
    tags = {t.id: t for t in Tag.objects.filter(id__in=tag_ids, deleted=False, group__deleted=False)}
    groups = {g.group_id: g for g in TagGroup.objects.filter(group_id__in=group_ids, deleted=False)}
    if any(t not in tags for t in tag_ids) or any(g not in groups for g in group_ids):
        raise WeComError(40068)
    removed_tags = set(tags)
    removed_groups = list(dict.fromkeys(group_ids))
    removed_tags.update(Tag.objects.filter(group_id__in=removed_groups, deleted=False).values_list("id", flat=True))
    Tag.objects.filter(id__in=removed_tags).update(deleted=True)
    TagGroup.objects.filter(group_id__in=removed_groups).update(deleted=True)
    emptied = []
    for gid in {t.group_id for t in tags.values()} - set(removed_groups):
        if not Tag.objects.filter(group_id=gid, deleted=False).exists():
            TagGroup.objects.filter(group_id=gid).update(deleted=True)
            emptied.append(gid)
    strip_tags_from_follows(removed_tags)
    if fire:
        for gid in removed_groups:
            _tag_event("delete", gid, "tag_group", groups[gid].strategy_id)
        for tid in tag_ids:
            if tid in tags and tags[tid].group_id not in removed_groups:
                _tag_event("delete", tid, "tag", None)
        for gid in emptied:
            _tag_event("delete", gid, "tag_group", None)
    return {"deleted_tags": sorted(removed_tags), "deleted_groups": removed_groups + emptied}


def strip_tags_from_follows(tag_ids: set[str]) -> None:
    if not tag_ids:
        return
    from django.db.models import Q

    cond = Q()
    for tid in tag_ids:
        cond |= Q(tag_ids__icontains=tid)  # a text prefilter on the JSON; exact check below
    for f in Follow.objects.filter(cond).only("id", "tag_ids"):
        kept = [t for t in f.tag_ids if t not in tag_ids]
        if kept != f.tag_ids:
            Follow.objects.filter(id=f.id).update(tag_ids=kept)


# --- endpoints -----------------------------------------------------------------------------------


@endpoint("externalcontact/get_corp_tag_list", methods=("POST",))
def get_corp_tag_list(req: SimRequest) -> dict:
    """get_corp_tag_list: both empty → every live group and tag; ``group_id`` → those groups with
    their tags (``tag_id`` then ignored); ``tag_id`` → those tags in their groups. Deleted ids asked
    for explicitly come back with ``deleted: true``."""
    tag_ids = str_list(req.body.get("tag_id"), "tag_id")
    group_ids = str_list(req.body.get("group_id"), "group_id")
    out = []
    if group_ids:
        for g in _sorted_groups(TagGroup.objects.filter(group_id__in=group_ids)):
            qs = Tag.objects.filter(group_id=g.group_id)
            if not g.deleted:
                qs = qs.filter(deleted=False)
            out.append(_group_json(g, [_attach(t, g) for t in qs]))
    elif tag_ids:
        tags = list(Tag.objects.filter(id__in=tag_ids).select_related("group"))
        by_group: dict[str, list[Tag]] = {}
        for t in tags:
            by_group.setdefault(t.group_id, []).append(t)
        groups = TagGroup.objects.filter(group_id__in=by_group)
        for g in _sorted_groups(groups):
            out.append(_group_json(g, by_group[g.group_id]))
    else:
        groups = {g.group_id: g for g in TagGroup.objects.filter(deleted=False)}
        by_group = {}
        for t in Tag.objects.filter(deleted=False, group_id__in=groups):
            by_group.setdefault(t.group_id, []).append(_attach(t, groups[t.group_id]))
        for g in _sorted_groups(groups.values()):
            if by_group.get(g.group_id):
                out.append(_group_json(g, by_group[g.group_id]))
    return {"tag_group": out}


def _attach(t: Tag, g: TagGroup) -> Tag:
    t.group = g  # avoid one query per tag
    return t


@endpoint("externalcontact/add_corp_tag", methods=("POST",))
def add_corp_tag(req: SimRequest) -> dict:
    with transaction.atomic():
        group = create_tags(req.body, req.now, rules.get().tag_api_changes_callback)
    return {"tag_group": group}


@endpoint("externalcontact/edit_corp_tag", methods=("POST",))
def edit_corp_tag(req: SimRequest) -> dict:
    with transaction.atomic():
        edit_tag(req.body, rules.get().tag_api_changes_callback)
    return {}


@endpoint("externalcontact/del_corp_tag", methods=("POST",))
def del_corp_tag(req: SimRequest) -> dict:
    with transaction.atomic():
        delete_tags(req.body, rules.get().tag_api_changes_callback)
    return {}


@endpoint("externalcontact/mark_tag", methods=("POST",))
def mark_tag(req: SimRequest) -> dict:
    """mark_tag (doc 92118, rule R10): corp tags on one (employee, customer) pair. Not a follower
    → 84061; unknown or deleted tag → 40068; add_tag and remove_tag both empty → 40058. Fires
    edit_external_contact only with rule ``customer_api_edits_callback`` (part 1 §3.5: current
    docs describe no callback for API-made tag changes)."""
    body = req.body
    if not body.get("userid"):
        raise WeComError(40003)
    user = contact_user(body.get("userid"))
    ext = get_customer(body.get("external_userid"))
    add = str_list(body.get("add_tag"), "add_tag")
    remove = str_list(body.get("remove_tag"), "remove_tag")
    if not add and not remove:
        raise WeComError(40058, "add_tag and remove_tag are both empty")
    known = live_tags(add + remove)
    if any(t not in known for t in add + remove):
        raise WeComError(40068)
    with transaction.atomic():
        f = visible_follow(user.userid, ext.external_userid)
        tags = list(f.tag_ids)
        for t in add:
            if t not in tags:
                tags.append(t)
        tags = [t for t in tags if t not in set(remove)]
        if tags != f.tag_ids:
            f.tag_ids = tags
            f.save(update_fields=["tag_ids"])
        if rules.get().customer_api_edits_callback:
            emit("change_external_contact", "edit_external_contact", UserID=f.userid, ExternalUserID=f.external_userid)
    return {}


# --- admin console (control) ---------------------------------------------------------------------


def _wecom_to_control(fn):
    def run(body: dict) -> dict:
        try:
            return fn(body)
        except WeComError as e:
            raise ControlError(e.errmsg) from e

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


@action("tags/admin_create", schemas.TagsAdminCreate)
@_wecom_to_control
def admin_create(body: dict) -> dict:
    """An admin creates tags in the console. Body: group_id or group_name, order, tags: names or
    {name, order}. Emits change_external_tag create."""
    tags = [t if isinstance(t, dict) else {"name": t} for t in (body.get("tags") or body.get("tag") or [])]
    group = create_tags({**body, "tag": tags}, clock.now(), fire=True)
    return {"tag_group": group}


@action("tags/admin_update", schemas.TagsAdminUpdate)
@_wecom_to_control
def admin_update(body: dict) -> dict:
    """An admin renames or re-orders a tag or a group. Body: id, name, order. Emits update."""
    edit_tag(body, fire=True)
    return {}


@action("tags/admin_delete", schemas.TagsAdminDelete)
@_wecom_to_control
def admin_delete(body: dict) -> dict:
    """An admin deletes tags or groups. Body: tag_id[], group_id[]. Emits delete."""
    return delete_tags(body, fire=True)


@action("tags/admin_shuffle", schemas.TagsAdminShuffle)
def admin_shuffle(body: dict) -> dict:
    """An admin re-orders tags in a group ({group_id, order: [tag ids, first shown first]}) or the
    groups themselves ({order: [group ids]}). Emits shuffle with the group's Id, or an empty Id
    when the order of the groups changed (part 3 §2.3)."""
    ids = body.get("order") or []
    if not isinstance(ids, list):
        raise ControlError("order must be a list of ids")
    gid = body.get("group_id") or ""
    if gid:
        group = TagGroup.objects.filter(group_id=gid, deleted=False).first()
        if group is None:
            raise ControlError("unknown group_id")
        tags = {t.id: t for t in Tag.objects.filter(group_id=gid, deleted=False)}
        if set(ids) - set(tags):
            raise ControlError("order names tags outside the group")
        rest = [t.id for t in _sorted_tags(tags.values()) if t.id not in ids]
        seq = list(ids) + rest
        for i, tid in enumerate(seq):
            Tag.objects.filter(id=tid).update(order=len(seq) - i)
        emit("change_external_tag", "shuffle", Id=gid, StrategyId=group.strategy_id)
    else:
        groups = {g.group_id: g for g in TagGroup.objects.filter(deleted=False)}
        if set(ids) - set(groups):
            raise ControlError("order names unknown groups")
        rest = [g.group_id for g in _sorted_groups(groups.values()) if g.group_id not in ids]
        seq = list(ids) + rest
        for i, g in enumerate(seq):
            TagGroup.objects.filter(group_id=g).update(order=len(seq) - i)
        emit("change_external_tag", "shuffle", Id="")
    return {"order": seq}
