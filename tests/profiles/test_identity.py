"""Identity of persons (docs/cdp.md "Identity"): every WeCom customer linked to a person (the
set-based backfill and the incremental link timer), merges when a member import meets a WeCom
customer, unionid conflicts, manual merge and unmerge, and the cluster / live-id selectors."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from siyu.core import timers
from siyu.core.models import Timer
from siyu.customers.models import Customer
from siyu.profiles import selectors, services, tasks
from siyu.profiles.models import IdentityConflict, Profile, ProfileHistory, ProfileKey

pytestmark = pytest.mark.django_db

EXT = ProfileKey.Kind.EXTERNAL_USERID


def customer(ext: str, name: str = "", unionid: str = "") -> Customer:
    return Customer.objects.create(external_userid=ext, name=name or ext, unionid=unionid)


def person_of(c: Customer) -> int:
    key = ProfileKey.objects.get(kind=EXT, value=c.external_userid)
    assert key.customer_id == c.id
    return selectors.live_id(key.profile_id)


def snapshot(pid: int) -> dict:
    p = Profile.objects.get(id=pid)
    return {f.name: getattr(p, f.attname) for f in Profile._meta.concrete_fields if f.name not in ("updated_at",)}


# --- linking ------------------------------------------------------------------------------------------
def test_backfill_links_every_customer_set_based():
    member = services.resolve_keys([{"unionid": "U-member", "member_no": "M1"}], source="import")[0]
    a = customer("wmA", "阿花", unionid="U-a")
    b = customer("wmB", "小B", unionid="U-shared")
    c = customer("wmC", "小C", unionid="U-shared")  # the same WeChat user seen twice: one person
    d = customer("wmD", "老D")
    e = customer("wmE", "会员E", unionid="U-member")  # a member imported first: joins that person

    assert services.link_backfill() == 5
    assert services.link_backfill() == 0  # idempotent

    pa, pb, pc, pd, pe = (person_of(x) for x in (a, b, c, d, e))
    assert len({pa, pb, pd, pe}) == 4 and pb == pc and pe == member
    assert Profile.objects.get(id=pa).name == "阿花" and Profile.objects.get(id=pa).unionid == "U-a"
    assert ProfileKey.objects.get(kind="unionid", value="U-shared").profile_id == pb
    assert ProfileKey.objects.get(kind="unionid", value="U-a").profile_id == pa
    assert ProfileHistory.objects.filter(profile_id=pa, kind="created").exists()
    assert ProfileHistory.objects.filter(profile_id=member, kind="key_added").exists()
    # new profiles created after the backfill still get fresh ids (the sequence moved on)
    later = Profile.objects.create(name="later")
    assert later.id > max(pa, pb, pd)


def test_incremental_link_new_and_changed_customers_via_the_timer():
    customer("wm1", "一号")
    tasks.ensure_scheduled()
    assert timers.due_at(tasks.KEY) is not None
    tasks.ensure_scheduled()  # one pending timer at most
    assert Timer.objects.filter(kind=tasks.KIND, status=Timer.Status.PENDING).count() == 1

    state = services.link_step({})  # the first run: backfill
    assert state["after_id"] > 0
    two = customer("wm2", "二号")
    state = services.link_step(state)
    p2 = person_of(two)
    assert Profile.objects.get(id=p2).name == "二号"

    # a member with a unionid is imported; WeCom then reports the same unionid for customer 2
    member = services.resolve_keys([{"unionid": "U-2", "member_no": "M-2", "phone": "13800138002"}], source="import")[0]
    assert member != p2
    Customer.objects.filter(id=two.id).update(unionid="U-2", updated_at=timezone.now() + timedelta(seconds=1))
    state = services.link_step(state)
    assert selectors.live_id(member) == selectors.live_id(p2) == min(member, p2)  # the older survives
    assert ProfileHistory.objects.filter(kind="merged").exists()
    # nothing new: a no-op
    assert services.link_step(state)["after_id"] == state["after_id"]


def test_the_link_timer_runs_in_the_worker_loop(django_capture_on_commit_callbacks):
    c = customer("wmT", "定时")
    tasks.ensure_scheduled()
    Timer.objects.filter(kind=tasks.KIND).update(run_after=time.time() - 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert timers.run_due("test-worker") == 1
    assert person_of(c)
    # it scheduled its next run with the watermarks
    nxt = Timer.objects.get(kind=tasks.KIND, status=Timer.Status.PENDING)
    assert nxt.payload["after_id"] == c.id


@pytest.mark.parametrize("key", ["unionid", "member_no", "phone"])
def test_member_import_meeting_a_wecom_customer_merges(key):
    c = customer("wmX", "微信客户", unionid="U-x")
    services.link_backfill()
    wecom_person = person_of(c)
    # a member known by another key first (a younger person), then a row naming both
    member = services.resolve_keys([{"member_no": "M-x", "openid": "o-x"}], source="import")[0]
    services.resolve_keys([{"phone": "+86 138-0013-8000", "member_no": "M-x"}], source="import")
    bridging = {
        "unionid": {"unionid": "U-x", "member_no": "M-x"},
        "member_no": {"member_no": "M-x", "external_userid": "wmX"},
        "phone": {"phone": "13800138000", "external_userid": "wmX"},
    }[key]
    [pid] = services.resolve_keys([bridging], source="import")
    assert pid == wecom_person and selectors.live_id(member) == wecom_person
    assert selectors.cluster_ids(wecom_person) == [wecom_person, member]


def test_two_unionids_are_a_conflict_never_a_merge():
    a = customer("wmA", "甲", unionid="U-1")
    services.link_backfill()
    member = services.resolve_keys([{"unionid": "U-2", "member_no": "M-9"}], source="import")[0]
    # a row that names both persons
    services.resolve_keys([{"member_no": "M-9", "external_userid": "wmA"}], source="import")
    pa = person_of(a)
    assert selectors.live_id(member) == member and pa != member
    conflict = IdentityConflict.objects.get()
    assert {conflict.profile_id, conflict.other_id} == {pa, member}
    # an operator cannot merge them, by hand or from the conflict
    assert services.merge_refusal(pa, member)
    with pytest.raises(services.MergeRefused):
        services.merge(pa, member, operator="op")
    with pytest.raises(services.MergeRefused):
        services.resolve_conflict(conflict.id, "merge", operator="op")
    conflict.refresh_from_db()
    assert conflict.status == "open"
    services.resolve_conflict(conflict.id, "keep_apart", operator="op")
    conflict.refresh_from_db()
    assert conflict.status == "kept_apart" and conflict.resolved_by == "op"
    assert ProfileHistory.objects.filter(profile_id=pa, kind="conflict", operator="op").exists()
    with pytest.raises(services.MergeRefused):
        services.resolve_conflict(conflict.id, "keep_apart", operator="op")


def test_conflict_merge_when_allowed():
    p1 = Profile.objects.create(name="一")
    p2 = Profile.objects.create(name="二", member_no="M2")
    c = IdentityConflict.objects.create(profile=p1, other=p2, reason="manual_check")
    services.resolve_conflict(c.id, "merge", operator="op", survivor_id=p2.id)
    assert selectors.live_id(p1.id) == p2.id
    c.refresh_from_db()
    assert c.status == "merged"


def test_manual_merge_then_unmerge_restores_both_persons_exactly():
    wecom = Profile.objects.create(name="", gender=0)  # the older: survives
    member = Profile.objects.create(
        name="王芳", phone="13900000000", member_no="M7", member_level="金卡", points=300, custom={"vip": "yes"}
    )
    inner = Profile.objects.create(name="旧档案")  # merged into the member before
    ProfileKey.objects.create(profile=member, kind="member_no", value="M7")
    ProfileKey.objects.create(profile=inner, kind="openid", value="o-7")
    services.merge(member.id, inner.id, operator="op1")
    before = {pid: snapshot(pid) for pid in (wecom.id, member.id, inner.id)}
    keys_before = set(ProfileKey.objects.values_list("id", "profile_id", "kind", "value"))

    services.merge(wecom.id, member.id, operator="op2")
    assert selectors.cluster_ids(wecom.id) == [wecom.id, member.id, inner.id]  # flat
    merged = Profile.objects.get(id=wecom.id)
    assert merged.name == "王芳" and merged.member_level == "金卡" and merged.points == 300
    assert merged.custom == {"vip": "yes"}
    assert selectors.live_id(inner.id) == wecom.id

    services.unmerge(member.id, operator="op3")
    after = {pid: snapshot(pid) for pid in (wecom.id, member.id, inner.id)}
    assert after == before
    assert set(ProfileKey.objects.values_list("id", "profile_id", "kind", "value")) == keys_before
    kinds = list(ProfileHistory.objects.filter(profile=wecom).order_by("id").values_list("kind", "operator"))
    assert ("merged", "op2") in kinds and ("unmerged", "op3") in kinds
    assert ProfileHistory.objects.filter(profile=inner, kind="merged", operator="op2").exists()  # re-pointed
    with pytest.raises(services.MergeRefused):
        services.unmerge(member.id)


def test_selectors_cluster_live_and_sql_mapping():
    a = Profile.objects.create(name="a")
    b = Profile.objects.create(name="b")
    services.merge(a.id, b.id)
    assert selectors.cluster_ids(a.id) == [a.id, b.id]
    assert selectors.live_id(b.id) == a.id and selectors.live_id(a.id) == a.id
    assert selectors.live_id(10**12) is None
    with connection.cursor() as cur:
        cur.execute(f"SELECT p.id, {selectors.LIVE_ID_SQL} FROM profiles_profile p ORDER BY p.id")
        assert cur.fetchall() == [(a.id, a.id), (b.id, a.id)]
    rows = Profile.objects.annotate(person=selectors.live_id_expression()).values_list("id", "person")
    assert dict(rows) == {a.id: a.id, b.id: a.id}
