"""The profile page's orders and events sections (registered with siyu.profiles.sections)."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from siyu.commerce import selectors, services
from siyu.profiles import sections
from siyu.profiles.models import Profile

pytestmark = pytest.mark.django_db


def test_sections_registered_and_render_a_merged_persons_orders_with_items_newest_first():
    keys = {s.key: s for s in sections.all_sections()}
    assert keys["orders"].template == "commerce/section_orders.html"
    assert keys["events"].template == "commerce/section_events.html"
    services.ingest_orders(
        [
            {"order_no": "OLD", "phone": "13800000001", "paid_at": "2026-01-01 10:00", "amount": "10", "items": []},
            {
                "order_no": "NEW",
                "member_no": "M1",
                "paid_at": "2026-03-01 10:00",
                "amount": "20",
                "items": [{"sku": "S", "name": "<script>x</script>", "category": "戒指", "quantity": 2, "price": "10"}],
            },
        ],
        source="pos",
    )
    # a row joining both keys merges the two persons
    services.ingest_orders(
        [{"order_no": "MID", "phone": "13800000001", "member_no": "M1", "paid_at": "2026-02-01", "amount": "5"}],
        source="pos",
    )
    person = Profile.objects.get(merged_into=None)
    cluster = [person.id, *Profile.objects.filter(merged_into=person).values_list("id", flat=True)]
    assert len(cluster) == 2
    ctx = selectors.orders_section(person.id, cluster, None)
    assert [o.order_no for o in ctx["orders"]] == ["NEW", "MID", "OLD"] and ctx["total"] == 3
    html = render_to_string("commerce/section_orders.html", ctx)
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html and "× 2" in html
    assert html.index("NEW") < html.index("MID") < html.index("OLD")
    services.ingest_events(
        [
            {"event_id": "E1", "member_no": "M1", "type": "coupon_claimed", "at": "2026-03-02", "props": {"c": "<b>"}},
            {"event_id": "E2", "phone": "13800000001", "type": "my_custom", "at": "2026-03-03"},
        ],
        source="mall",
    )
    ctx = selectors.events_section(person.id, cluster, None)
    assert [e["code"] for e in ctx["events"]] == ["my_custom", "coupon_claimed"]
    html = render_to_string("commerce/section_events.html", ctx)
    assert "领取优惠券" in html and "&lt;b&gt;" in html and "coupon_claimed" not in html  # the name, not the code
    empty = render_to_string("commerce/section_orders.html", selectors.orders_section(0, [0], None))
    assert "暂无订单" in empty
