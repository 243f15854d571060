"""Batch ingestion (commerce.services): orders, events, members; per-row errors, nothing
half-written, idempotent re-sends, refunds, identity through imports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from siyu.commerce import services
from siyu.commerce.models import Event, EventType, Order, OrderItem
from siyu.profiles.models import CustomField, IdentityConflict, Profile, ProfileKey

pytestmark = pytest.mark.django_db


def order(no: str, **kw):
    row = {
        "order_no": no,
        "phone": "+86 138-0013-8000",
        "paid_at": "2026-05-01T14:30:00",
        "amount": "100.00",
        "items": [{"sku": "A", "name": "戒指", "category": "ring", "brand": "B", "quantity": 1, "price": "100"}],
    }
    row.update(kw)
    return row


def counts(result):
    d = result.as_dict()
    return (d["created"], d["updated"], d["unchanged"], d["failed"])


def test_orders_created_then_unchanged_then_refund_updates():
    r = services.ingest_orders([order("SO1"), order("SO2", amount="50", items=[])], source="pos")
    assert counts(r) == (2, 0, 0, 0)
    o = Order.objects.get(order_no="SO1")
    assert o.source == "pos" and o.amount == Decimal("100.00") and o.paid_at.isoformat() == "2026-05-01T06:30:00+00:00"
    assert ProfileKey.objects.get(kind="phone").value == "13800138000"
    assert OrderItem.objects.get(order=o).profile_id == o.profile_id
    stamp = o.updated_at
    # the same rows again: nothing written
    r = services.ingest_orders([order("SO1"), order("SO2", amount="50", items=[])], source="pos")
    assert counts(r) == (0, 0, 2, 0)
    assert Order.objects.get(order_no="SO1").updated_at == stamp
    # a refund: the same order with a new status and refunded amount
    r = services.ingest_orders([order("SO1", status="part_refunded", refunded_amount="30")], source="pos")
    assert counts(r) == (0, 1, 0, 0)
    o2 = Order.objects.get(order_no="SO1")
    assert (o2.status, o2.refunded_amount, o2.net_amount) == ("part_refunded", Decimal("30.00"), Decimal("70.00"))
    assert o2.updated_at > stamp and o2.profile_id == o.profile_id and o2.id == o.id
    # items replaced on change
    services.ingest_orders(
        [order("SO1", status="part_refunded", refunded_amount="30", items=[{"sku": "X"}, {"sku": "Y", "quantity": 2}])],
        source="pos",
    )
    assert sorted(OrderItem.objects.filter(order=o).values_list("sku", "quantity")) == [("X", 1), ("Y", 2)]
    # a full refund without an amount refunds it all
    services.ingest_orders([order("SO2", amount="50", items=[], status="refunded")], source="pos")
    assert Order.objects.get(order_no="SO2").refunded_amount == Decimal("50.00")


def test_bad_rows_reported_good_rows_written_nothing_half_written():
    rows = [
        order("OK1"),
        order("BAD1", amount="-5"),
        order("BAD2", paid_at="yesterday"),
        {"order_no": "BAD3", "paid_at": "2026-05-01", "amount": "1"},  # no key
        order("BAD4", items=[{"sku": "A", "price": "x"}]),
        order("BAD5", status="lost"),
        order("BAD6", refunded_amount="500"),
        order("BAD7", phone="call me"),
        "not an object",
        order("x" * 65),
        order("OK1"),  # twice in one batch
        order("BAD8", amount="1.234"),
        order("BAD9", store_code="a\x00b"),
    ]
    r = services.ingest_orders(rows, source="pos")
    assert counts(r) == (1, 0, 0, 12)
    errs = {e["row"]: e for e in r.errors}
    assert errs[1] == {"row": 1, "id": "BAD1", "errors": {"amount": "must be between 0 and 9999999999.99"}}
    assert "paid_at" in errs[2]["errors"] and "keys" in errs[3]["errors"]
    assert "items[0].price" in errs[4]["errors"] and "status" in errs[5]["errors"]
    assert "refunded_amount" in errs[6]["errors"] and "phone" in errs[7]["errors"]
    assert errs[8]["errors"] == {"row": "must be an object"} and "order_no" in errs[9]["errors"]
    assert errs[10]["errors"] == {"order_no": "sent twice in this batch"}
    assert list(Order.objects.values_list("order_no", flat=True)) == ["OK1"]
    assert OrderItem.objects.count() == 1 and Profile.objects.count() == 1


def test_dry_run_writes_nothing_but_counts():
    services.ingest_orders([order("SO1")], source="pos")
    before = (Order.objects.count(), OrderItem.objects.count(), Profile.objects.count(), ProfileKey.objects.count())
    r = services.ingest_orders(
        [order("SO1", status="refunded"), order("SO9", phone="13900000000"), order("B", amount="x")],
        source="pos",
        dry_run=True,
    )
    assert counts(r) == (1, 1, 0, 1)
    assert (
        Order.objects.count(),
        OrderItem.objects.count(),
        Profile.objects.count(),
        ProfileKey.objects.count(),
    ) == before
    assert Order.objects.get(order_no="SO1").status == "paid"
    r = services.ingest_events(
        [{"event_id": "E1", "phone": "13900000000", "type": "brand_new_kind", "at": "2026-05-01"}], dry_run=True
    )
    assert counts(r) == (1, 0, 0, 0) and not EventType.objects.filter(code="brand_new_kind").exists()
    assert not Event.objects.exists()


def test_same_order_no_from_two_sources_are_two_orders():
    services.ingest_orders([order("SO1")], source="pos")
    r = services.ingest_orders([order("SO1", source="mall")], source="pos")
    assert counts(r) == (1, 0, 0, 0) and Order.objects.count() == 2


def test_identity_merge_and_conflict_through_orders():
    services.ingest_orders(
        [
            order("A1", phone="13800000001", items=[]),
            order("A2", phone="", member_no="M2", items=[]),
            order("U1", phone="", unionid="UN1", items=[]),
            order("U2", phone="", unionid="UN2", openid="o2", items=[]),
        ],
        source="pos",
    )
    p1, p2 = Order.objects.get(order_no="A1").profile_id, Order.objects.get(order_no="A2").profile_id
    assert p1 != p2
    services.ingest_orders([order("A3", phone="13800000001", member_no="M2", items=[])], source="pos")
    # member_no comes before phone: the row goes to M2's person, merged into the older one
    assert Profile.objects.get(id=p2).merged_into_id == p1
    assert Order.objects.get(order_no="A2").profile_id == p2  # orders never move
    assert Order.objects.get(order_no="A3").profile_id == p1
    services.ingest_orders([order("U3", phone="", unionid="UN1", openid="o2", items=[])], source="pos")
    u1 = Order.objects.get(order_no="U1").profile_id
    assert Order.objects.get(order_no="U3").profile_id == u1
    assert IdentityConflict.objects.filter(profile_id=u1, reason="unionid_mismatch").count() == 1
    assert not Profile.objects.exclude(merged_into=None).exclude(id=p2).exists()


def test_events_builtin_and_custom_types_idempotent():
    rows = [
        {"event_id": "E1", "openid": "o1", "type": "coupon_claimed", "at": "2026-05-01T10:00:00", "props": {"c": 1}},
        {"event_id": "E2", "openid": "o1", "type": "watched_live", "at": "2026-05-02T10:00:00", "props": '{"m": 3}'},
        {"event_id": "E3", "openid": "o1", "type": "Bad-Type", "at": "2026-05-02T10:00:00"},
        {"event_id": "E4", "openid": "o1", "type": "store_visit", "at": "2026-05-02", "props": "[1]"},
    ]
    r = services.ingest_events(rows, source="mall")
    assert counts(r) == (2, 0, 0, 2)
    assert EventType.objects.get(code="watched_live").builtin is False
    assert EventType.objects.get(code="coupon_claimed").builtin is True
    assert Event.objects.get(event_id="E2").props == {"m": 3}
    r = services.ingest_events(rows[:2], source="mall")
    assert counts(r) == (0, 0, 2, 0)
    r = services.ingest_events([{**rows[0], "props": {"c": 2}}], source="mall")
    assert counts(r) == (0, 1, 0, 0) and Event.objects.get(event_id="E1").props == {"c": 2}


def test_members_with_custom_fields():
    CustomField.objects.create(key="size", label="尺码", type="choice", options=["S", "M", "L"])
    CustomField.objects.create(key="height", label="身高", type="number")
    rows = [
        {
            "member_no": "M1",
            "phone": "13800138000",
            "name": "张三",
            "gender": "女",
            "level": "gold",
            "points": "1200",
            "birthday": "1990-05-01",
            "custom.size": "M",
            "custom": {"height": "165"},
        },
        {"member_no": "M2", "custom.size": "XXL"},
        {"member_no": "M3", "custom.nope": "1"},
        {"member_no": "M4", "birthday": "1990-13-01"},
        {"phone": "13800000000"},
    ]
    r = services.ingest_members(rows)
    assert counts(r) == (1, 0, 0, 4)
    p = Profile.objects.get(member_no="M1")
    assert (p.name, p.gender, p.member_level, p.points, str(p.birthday)) == ("张三", 2, "gold", 1200, "1990-05-01")
    assert p.custom == {"size": "M", "height": 165} and p.phone == "13800138000"
    assert counts(services.ingest_members(rows[:1])) == (0, 0, 1, 0)
    assert counts(services.ingest_members([{"member_no": "M1", "points": 1300}])) == (0, 1, 0, 0)
    assert Profile.objects.get(member_no="M1").points == 1300
    # a member row whose phone names an order customer lands on that person
    services.ingest_orders([order("SO1", phone="13700000000")], source="pos")
    pid = Order.objects.get(order_no="SO1").profile_id
    services.ingest_members([{"member_no": "M9", "phone": "13700000000", "name": "李四"}])
    assert Profile.objects.get(id=pid).name == "李四"


def test_guides_who_are_not_members_are_reported_and_their_orders_kept(tmp_path):
    from django.template.loader import render_to_string

    from siyu.commerce import selectors
    from siyu.commerce.models import ImportJob
    from siyu.org.models import Employee

    Employee.objects.create(userid="wang", name="王导购", contact_enabled=True)
    rows = [
        order("G1", guide_userid="wang"),
        order("G2", guide_userid="pos-007"),
        order("G3", guide_userid="pos-007"),
        order("G4", guide_userid="<b>x</b>"),
        order("G5"),
    ]
    dry = services.ingest_orders(rows, dry_run=True)
    assert dry.as_dict()["unknown_guides"] == ["pos-007", "<b>x</b>"] and not Order.objects.exists()
    r = services.ingest_orders(rows)
    assert counts(r) == (5, 0, 0, 0) and r.guides_unknown == {"pos-007": 2, "<b>x</b>": 1}
    assert Order.objects.filter(guide_userid="pos-007").count() == 2  # kept as sent
    # a re-send writes nothing and so warns of nothing
    assert services.ingest_orders(rows).as_dict()["unknown_guides"] == []
    person = Order.objects.get(order_no="G1").profile_id
    ctx = selectors.orders_section(person, [person], None)
    html = render_to_string("commerce/section_orders.html", ctx)
    assert "王导购" in html and "pos-007" in html and "非成员" in html and "<b>x</b>" not in html
    # an import job keeps them for its report, escaped
    job = ImportJob.objects.create(kind="orders", filename="f.csv", path=str(tmp_path / "f.csv"), status="done")
    job.unknown_guides = r.unknown_guides()
    job.save()
    panel = render_to_string("commerce/_import_job.html", {"job": job})
    assert "pos-007、&lt;b&gt;x&lt;/b&gt;" in panel and "已按原样导入" in panel


def test_an_order_another_import_stored_meanwhile_is_neither_doubled_nor_lost(monkeypatch):
    """Two imports met at the same new order numbers: the second finds them stored when it writes
    (PostgreSQL: its COPY meets a unique violation and goes again; SQLite: DO NOTHING)."""
    real = services.profile_services.resolve_keys

    def racing(*args, **kwargs):  # the other import commits between this one's read and its write
        monkeypatch.setattr(services.profile_services, "resolve_keys", real)
        services.ingest_orders([order("R1"), order("R2")], source="pos")
        return real(*args, **kwargs)

    monkeypatch.setattr(services.profile_services, "resolve_keys", racing)
    r = services.ingest_orders([order("R1"), order("R2", amount="50.00"), order("R3")], source="pos")
    assert counts(r) == (1, 1, 1, 0)
    assert Order.objects.get(order_no="R2").amount == Decimal("50.00")
    assert sorted(OrderItem.objects.values_list("order__order_no", flat=True)) == ["R1", "R2", "R3"]
    person = Order.objects.get(order_no="R1").profile_id
    assert set(Order.objects.values_list("profile_id", flat=True)) == {person}
    assert set(OrderItem.objects.values_list("profile_id", flat=True)) == {person}
