"""Group tags (Siyu's own: WeCom has no group-tag API) choose the groups of a group mass message:
tagged in the console, estimated, sent over real HTTP to the emulator, received by exactly those."""

from __future__ import annotations

import pytest

from siyu.accounts import services as accounts
from siyu.accounts.selectors import DataScope
from siyu.broadcasts import planning, services
from siyu.broadcasts.models import Broadcast, Recipient
from siyu.groups import services as group_services
from siyu.groups.models import GroupChat, GroupTag
from tests.broadcasts.helpers import planned_targets, run_now, sync_product
from tests.broadcasts.test_caps import settle
from tests.conftest import point_product_at
from tests.sim.helpers import own_sim

sim = own_sim(customers=300, seed=21, demo=True)
EVERYTHING = DataScope(everything=True)


@pytest.fixture
def product(sim, transactional_db):
    point_product_at(sim)
    sync_product()
    sim.control("mass/auto", {"probability": 1.0, "delay_s": 0, "seed": 2})
    yield sim
    sim.control("mass/auto", {"probability": 0, "delay_s": 0})


def test_groups_tagged_in_the_console_are_the_audience_of_a_group_broadcast(product, client):
    admin, _ = accounts.ensure_user("ops-admin", "ops-pass-123", role="admin")
    client.force_login(admin)
    groups = list(GroupChat.objects.filter(status=GroupChat.ACTIVE, owner__isnull=False).order_by("id")[:5])
    assert len(groups) == 5
    vip, chosen = "<b>VIP群</b>", groups[:3]

    # tag three groups on their pages: the first creates the tag by name, the others tick it
    r = client.post(f"/groups/{chosen[0].id}/", {"new_tag": vip})
    assert r.status_code == 302
    tag = GroupTag.objects.get(name=vip)
    for g in chosen[1:]:
        assert client.post(f"/groups/{g.id}/", {"tags": [str(tag.id)]}).status_code == 302
    page = client.get(f"/groups/{chosen[0].id}/").content.decode()
    assert "&lt;b&gt;VIP群&lt;/b&gt;" in page and "<b>VIP群</b>" not in page  # inert everywhere
    listed = client.get("/groups/", {"tag": tag.id}).content.decode()
    assert listed.count('data-testid="group-row"') == 3

    # too long a name is refused with a message, nothing changes
    client.post(f"/groups/{groups[4].id}/", {"new_tag": "长" * 40})
    assert not groups[4].taggings.exists()
    with pytest.raises(group_services.GroupTagError):
        group_services.create_group_tag("  ")

    # untagging: the last group loses the tag again
    group_services.set_group_tags(groups[3], [tag.id])
    client.post(f"/groups/{groups[3].id}/", {})
    assert not groups[3].taggings.exists()

    b = services.save_draft(
        kind=Broadcast.GROUP,
        name="VIP 群发",
        text="VIP 专属活动",
        attachments=[],
        audience={"tag_ids": [tag.id]},
        scope=EVERYTHING,
    )
    est = planning.estimate(b)
    assert est["recipients"] == 3 and est["skipped_total"] == 0
    b = run_now(b)
    assert b.status == Broadcast.SENT, b.error
    settle(b)
    assert planned_targets(b, Recipient.RECEIVED) == {g.chat_id for g in chosen}
    # the emulator got one add_msg_template per owner, for exactly these chats
    assert set(Recipient.objects.filter(broadcast=b).values_list("target", flat=True)) == {g.chat_id for g in chosen}
