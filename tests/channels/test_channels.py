"""Channel QR codes against the emulator: schedules, caps and backups over many scans; exactly one
welcome per add; attribution (channel, tags, remark) from the state alone.

The emulator's clock is moved through a simulated day (its own emulator: the clock only moves
forward). Every scan's callbacks arrive over HTTP at the product's live server and are processed
before the next scan, as a worker would; the slot and midnight recomputes are run at their
instants as the ``channels.recompute`` timer runs them.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from siyu.channels import schedule, services
from siyu.channels.models import ChannelAdd, ChannelCode, WelcomeSend
from siyu.core.models import Timer
from siyu.customers.models import FollowRelation, FollowTag
from siyu.sync.services import run_full_sync
from siyu.wecom import inbox
from tests.sim.helpers import employee, new_tags, own_sim, png_bytes

sim = own_sim(customers=10, seed=41)

CST = services.timezone.get_current_timezone()


class Driver:
    def __init__(self, sim):
        self.sim = sim
        self.mark = 0
        while True:
            page = sim.control("callbacks", {"since": self.mark, "limit": 5000})["callbacks"]
            if not page:
                break
            self.mark = page[-1]["id"]

    def now(self) -> int:
        return self.sim.control("tick")["now"]

    def advance_to(self, dt: datetime) -> int:
        delta = dt.timestamp() - self.now()
        assert delta >= 0
        now = self.sim.control("time/advance", {"seconds": delta})["now"]
        services.recompute_all(now)  # what the channels.recompute timer does at this instant
        return now

    def process(self, events: int = 0) -> None:
        """Wait until every callback the emulator queued since the last call is delivered (at least
        ``events`` of them), then process the inbox as a worker would."""
        deadline = time.time() + 20
        while True:
            cbs = self.sim.control("callbacks", {"since": self.mark, "limit": 5000})["callbacks"]
            if len(cbs) >= events and all(c["status"] == 1 for c in cbs):
                break
            assert time.time() < deadline, "callbacks not delivered"
            time.sleep(0.005)
        if cbs:
            self.mark = cbs[-1]["id"]
        while inbox.process_pending(limit=50, worker_id="test"):
            pass
        services.wait_decorations()

    def scan(self, code: ChannelCode) -> dict:
        r = self.sim.control("scan", {"config_id": code.config_id})
        self.process(2)  # skip-verify: add_half_external_contact, then add_external_contact
        return r


def _run(world_sim, scans_per_phase: list[int], cap: int) -> dict:
    run_full_sync(workers=2)
    d = Driver(world_sim)
    a, b, c, backup = (employee(world_sim) for _ in range(4))
    d.process(0)
    tag_ids = new_tags(world_sim, "门店海报", "新客")
    d.process()
    run_full_sync(workers=2)
    # start on a day at 08:00 China time (before the first slot)
    t0 = datetime.fromtimestamp(d.now(), CST).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=1)
    d.advance_to(t0)
    img = services.save_upload(png_bytes(), ".png")
    code = services.create_code(
        {
            "name": "门店海报A",
            "users": [a, b, c],
            "backups": [backup],
            "schedule": services.clean_schedule(
                [
                    {"days": list(range(7)), "start": "09:00", "end": "12:00", "users": [a, b]},
                    {"days": list(range(7)), "start": "12:00", "end": "18:00", "users": [b, c]},
                ]
            ),
            "daily_cap": cap,
            "tag_ids": tag_ids,
            "remark_template": "{channel}",
            "description_template": "来自{channel}",
            "welcome": {"text": "你好，我是{employee}", "attachments": [{"msgtype": "image", "image": {"file": img}}]},
        }
    )
    # create_code recomputes at the product's (real) clock; the scenario runs on the emulator's
    # clock, so recompute at its 08:00 (as the channels.recompute timer would), whatever the hour.
    services.recompute(code, d.now())
    assert code.active_users == [backup]  # 08:00: nobody on duty
    landed: list[tuple[str, str]] = []  # (phase, userid)
    phases = [
        ("morning", t0.replace(hour=9)),
        ("afternoon", t0.replace(hour=12)),
        ("evening", t0.replace(hour=18)),
        ("next_morning", t0.replace(hour=9) + timedelta(days=1)),
    ]
    for (name, at), n in zip(phases, scans_per_phase, strict=True):
        d.advance_to(at)
        for _ in range(n):
            landed.append((name, d.scan(code)["userid"]))
    return {"code": code, "a": a, "b": b, "c": c, "backup": backup, "landed": landed, "tags": tag_ids}


def _check(world_sim, out: dict, scans_per_phase: list[int], cap: int) -> None:
    code, a, b, c, backup, landed = out["code"], out["a"], out["b"], out["c"], out["backup"], out["landed"]
    per = {}
    for phase, u in landed:
        per.setdefault(phase, []).append(u)
    m, af, ev, nm = scans_per_phase
    # morning: A and B alternate until both reach the cap, then the backup takes over — exactly then
    assert per["morning"][: 2 * cap].count(a) == cap and per["morning"][: 2 * cap].count(b) == cap
    assert per["morning"][2 * cap :] == [backup] * (m - 2 * cap)
    # afternoon: B is capped for the day, C works until capped, then the backup
    assert per["afternoon"][:cap] == [c] * cap and per["afternoon"][cap:] == [backup] * (af - cap)
    # evening: off duty → backup
    assert per["evening"] == [backup] * ev
    # next morning: caps reset at midnight → A and B again, then the backup
    assert sorted(set(per["next_morning"][: 2 * cap])) == sorted([a, b])
    assert per["next_morning"][2 * cap :] == [backup] * (nm - 2 * cap)
    # caps never exceeded, per employee per day, in our records too
    for row in ChannelAdd.objects.filter(code=code, backup=False).values("day", "userid").distinct():
        assert ChannelAdd.objects.filter(code=code, backup=False, **row).count() <= cap
    total = sum(scans_per_phase)
    # attribution from the state: every add recorded against the code, tagged and remarked
    adds = list(ChannelAdd.objects.filter(code=code))
    assert len(adds) == total
    assert all(x.decorated and x.tags_ok and x.remark_ok and not x.error for x in adds)
    rels = FollowRelation.objects.filter(state=code.state)
    assert rels.count() == total
    assert set(rels.values_list("remark", flat=True)) == {code.name}
    assert set(rels.values_list("description", flat=True)) == {f"来自{code.name}"}
    assert FollowTag.objects.filter(relation__in=rels, tag__tag_id__in=out["tags"]).count() == 2 * total
    # exactly one welcome per add, in the emulator's own record
    assert WelcomeSend.objects.filter(code=code, status=WelcomeSend.SENT).count() == total
    assert not WelcomeSend.objects.exclude(status=WelcomeSend.SENT).exists()
    log = world_sim.control("welcome_log", {"config_id": code.config_id, "limit": 5000})["welcome_codes"]
    assert len(log) == total and all(x["used_at"] is not None for x in log)
    assert all(x["sent_payload"]["attachments"][0]["msgtype"] == "image" for x in log)
    assert {x["sent_payload"]["text"]["content"].startswith("你好，我是") for x in log} == {True}


def test_schedule_caps_backup_small(live_callbacks):
    phases, cap = [14, 8, 3, 12], 5
    out = _run(live_callbacks, phases, cap)
    _check(live_callbacks, out, phases, cap)


@pytest.mark.slow
def test_schedule_caps_backup_1000_scans(live_callbacks):
    phases, cap = [300, 200, 100, 400], 100
    out = _run(live_callbacks, phases, cap)
    _check(live_callbacks, out, phases, cap)


def test_second_event_with_same_code_sends_nothing(live_callbacks):
    """A redelivered / repeated add event: the welcome_code row exists, so no second send."""
    run_full_sync(workers=2)
    d = Driver(live_callbacks)
    u = employee(live_callbacks)
    d.process(0)
    code = services.create_code({"name": "重复", "users": [u], "welcome": {"text": "hi", "attachments": []}})
    r = d.scan(code)
    assert WelcomeSend.objects.filter(welcome_code=r["welcome_code"], status=WelcomeSend.SENT).count() == 1
    from siyu.channels.handlers import on_add

    ev = {
        "UserID": r["userid"],
        "ExternalUserID": r["external_userid"],
        "State": code.state,
        "WelcomeCode": r["welcome_code"],
        "ChangeType": "add_external_contact",
        "CreateTime": d.now(),
    }
    calls_before = len(
        live_callbacks.control("api_log", {"path": "externalcontact/send_welcome_msg", "limit": 100000})["calls"]
    )
    assert on_add(ev) is None  # the add is already recorded; nothing sent
    calls_after = len(
        live_callbacks.control("api_log", {"path": "externalcontact/send_welcome_msg", "limit": 100000})["calls"]
    )
    assert calls_after == calls_before


def test_recompute_timer_is_scheduled_at_next_boundary(live_callbacks):
    u = employee(live_callbacks)
    run_full_sync(workers=2)
    services.create_code(
        {
            "name": "排班",
            "users": [u],
            "schedule": services.clean_schedule(
                [{"days": list(range(7)), "start": "10:30", "end": "11:00", "users": []}]
            ),
        }
    )
    schedule.ensure_scheduled()
    t = Timer.objects.filter(kind=schedule.KIND, status="pending").order_by("run_after").first()
    at = services.local(t.run_after)
    assert (at.hour, at.minute) in {(10, 30), (11, 0), (0, 0)} and t.run_after > time.time()


def test_media_reuploaded_when_expired(wecom_sim):
    from siyu.channels.models import MediaCache

    name = services.save_upload(png_bytes(), ".png")
    m1 = services.media_id_for(name)
    assert services.media_id_for(name) == m1  # cached
    MediaCache.objects.filter(file=name).update(uploaded_at=time.time() - services.MEDIA_TTL_S)
    m2 = services.media_id_for(name)
    assert m2 != m1


def test_group_code_counts_joins_and_follows_new_groups(live_callbacks, sim_rules):
    """A join way over one group; WeCom creates the next group when it is full (auto_create_room);
    joins are counted per code from the members' state."""
    from siyu.channels.groupcodes import services as groupcodes_services
    from siyu.channels.models import GroupCode

    run_full_sync(workers=2)
    d = Driver(live_callbacks)
    owner = employee(live_callbacks)
    d.process(0)
    sim_rules(group_max_members=3)
    chat = live_callbacks.control("group/create", {"owner": owner, "name": "春季群"})["chat_id"]
    d.process(1)
    code = groupcodes_services.create_group_code(
        "春季活动", chat_ids=[chat], auto_create=True, room_base_name="春季群", welcome_text="欢迎 {nickname}"
    )
    assert code.config_id and code.template_id and code.state == f"gq:{code.id}"
    for _ in range(4):  # the first group holds owner + 2; the third join makes WeCom create group 2
        r = live_callbacks.control("group/join", {"config_id": code.config_id})
        d.process(2 if r.get("created_chat_id") else 1)
    code = GroupCode.objects.get(id=code.id)
    assert code.joins == 4
    assert len(code.chat_ids) == 2 and code.chat_ids[0] == chat
