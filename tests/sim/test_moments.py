"""Customer Moments (客户朋友圈, part 2 §2, R6–R9)."""

from __future__ import annotations

from tests.sim.helpers import (
    customer_of,
    customers_of,
    employee,
    moment_image,
    new_tags,
    own_sim,
    tag,
    uid,
    upload_attachment,
    upload_image,
)

sim = own_sim(customers=50, seed=31)  # these tests advance the clock


def add(sim, **body) -> dict:
    return sim.call("externalcontact/add_moment_task", body)


def job_result(sim, jobid: str) -> dict:
    return sim.get("externalcontact/get_moment_task_result", jobid=jobid)


def run_job(sim, jobid: str) -> dict:
    """Drive the job to completion (each emulator tick moves it one step)."""
    for _ in range(10):
        r = job_result(sim, jobid)
        assert r["errcode"] == 0, r
        if r["status"] == 3:
            return r["result"]
        sim.control("tick")
    raise AssertionError("moment job did not finish")


def post(sim, **body) -> str:
    r = add(sim, **body)
    assert r["errcode"] == 0, r
    res = run_job(sim, r["jobid"])
    assert res["errcode"] == 0
    return res["moment_id"]


def senders(*users, depts=()) -> dict:
    return {"sender_list": {"user_list": list(users), "department_list": list(depts)}}


def task_list(sim, moment_id: str) -> dict:
    r = sim.call("externalcontact/get_moment_task", {"moment_id": moment_id})
    assert r["errcode"] == 0, r
    return {t["userid"]: t["publish_status"] for t in r["task_list"]}


def customer_list(sim, moment_id: str, userid: str, **kw) -> dict:
    r = sim.call("externalcontact/get_moment_customer_list", {"moment_id": moment_id, "userid": userid, **kw})
    assert r["errcode"] == 0, r
    return r


def send_result(sim, moment_id: str, userid: str, **kw) -> dict:
    r = sim.call("externalcontact/get_moment_send_result", {"moment_id": moment_id, "userid": userid, **kw})
    assert r["errcode"] == 0, r
    return r


def publish(sim, moment_id: str, userid: str, expect_ok: bool = True) -> dict:
    return sim.control("moment/publish", {"moment_id": moment_id, "userid": userid}, expect_ok=expect_ok)


# --- creation rules (R6) ------------------------------------------------------------------------------
def test_job_goes_1_2_3(sim):
    e = employee(sim)
    customers_of(sim, e, 2)
    r = add(sim, text={"content": "新品上市"}, visible_range=senders(e))
    assert r["errcode"] == 0 and r["jobid"]
    first = job_result(sim, r["jobid"])
    assert first["type"] == "add_moment_task" and first["status"] in (1, 2)
    seen = {first["status"]}
    for _ in range(5):
        sim.control("tick")
        s = job_result(sim, r["jobid"])
        seen.add(s["status"])
        if s["status"] == 3:
            break
    assert 3 in seen and seen <= {1, 2, 3}
    res = job_result(sim, r["jobid"])["result"]
    assert res["errcode"] == 0 and res["moment_id"].startswith("mom")
    assert res["invalid_sender_list"] == {"user_list": [], "department_list": []}
    assert res["invalid_external_contact_list"] == {"tag_list": []}
    assert job_result(sim, "nosuchjob")["errcode"] == 40088


def test_jobid_valid_24h(sim):
    e = employee(sim)
    jobid = add(sim, text={"content": "一天后"}, visible_range=senders(e))["jobid"]
    run_job(sim, jobid)
    sim.advance(24 * 3600 + 1)
    assert job_result(sim, jobid)["errcode"] == 40088


def test_attachment_rules(sim):
    e = employee(sim)
    vr = senders(e)
    img = {"msgtype": "image", "image": {"media_id": moment_image(sim)}}
    vid_id = upload_attachment(sim, "video", 1)["media_id"]
    vid = {"msgtype": "video", "video": {"media_id": vid_id}}
    link = {"msgtype": "link", "link": {"title": "活动页", "url": "https://example.com/m"}}

    def err(**body):
        r = add(sim, visible_range=vr, **body)
        return r["errcode"], r["errmsg"].split(",")[0]

    assert add(sim, visible_range=vr, attachments=[img] * 9)["errcode"] == 0
    assert err(attachments=[img] * 10) == (40058, "invalid attachments size")
    assert err(attachments=[vid, vid]) == (40058, "invalid attachments size")
    assert err(attachments=[link, link]) == (40058, "invalid attachments size")
    assert err(attachments=[img, vid]) == (40058, "invalid attachments msgtype")
    assert err(attachments=[img, link]) == (40058, "invalid attachments msgtype")
    assert add(sim, visible_range=vr, attachments=[vid])["errcode"] == 0
    assert add(sim, visible_range=vr, attachments=[link])["errcode"] == 0
    assert err(attachments=[{"msgtype": "file", "file": {"media_id": vid_id}}])[0] == 41065
    assert err(attachments=[{"msgtype": "video", "video": {}}]) == (40058, "invalid msg")
    assert err(text={"content": "长" * 2001}) == (40058, "invalid text size")
    assert add(sim, visible_range=vr, text={"content": "长" * 2000})["errcode"] == 0
    assert err()[0] == 44004
    assert err(attachments=[{"msgtype": "link", "link": {"title": "t" * 65, "url": "https://e.com"}}])[0] == 40058


def test_media_must_be_a_moments_attachment(sim):
    e = employee(sim)
    vr = senders(e)
    temp = upload_image(sim)  # media/upload, not upload_attachment
    album = upload_attachment(sim, "image", 2)["media_id"]  # product album scene
    assert (
        add(sim, visible_range=vr, attachments=[{"msgtype": "image", "image": {"media_id": temp}}])["errcode"] == 41072
    )
    assert (
        add(sim, visible_range=vr, attachments=[{"msgtype": "image", "image": {"media_id": album}}])["errcode"] == 41072
    )
    bogus = {"msgtype": "image", "image": {"media_id": "WWCISP_nope"}}
    assert add(sim, visible_range=vr, attachments=[bogus])["errcode"] == 40007


# --- visible range ------------------------------------------------------------------------------------
def test_sender_list_only(sim):
    e1, e2 = employee(sim), employee(sim)
    c1 = customers_of(sim, e1, 2)
    c2 = customers_of(sim, e2, 1)
    r = add(sim, text={"content": "全员可见"}, visible_range=senders(e1, e2, "ghost_user", depts=[987654]))
    res = run_job(sim, r["jobid"])
    assert res["invalid_sender_list"] == {"user_list": ["ghost_user"], "department_list": [987654]}
    mid = res["moment_id"]
    assert task_list(sim, mid) == {e1: 0, e2: 0}
    assert {x["external_userid"] for x in customer_list(sim, mid, e1)["customer_list"]} == set(c1)
    assert [x["external_userid"] for x in customer_list(sim, mid, e2)["customer_list"]] == c2
    lst = sim.call(
        "externalcontact/get_moment_list",
        {"start_time": sim.control("status")["now"] - 60, "end_time": sim.control("status")["now"] + 60},
    )
    m = next(x for x in lst["moment_list"] if x["moment_id"] == mid)
    assert m["visible_type"] == 1 and m["create_type"] == 0 and "creator" not in m


def test_department_senders_include_subdepartments(sim):
    top = sim.control("department/create", {"name": uid("区域")})["department"]["id"]
    sub = sim.control("department/create", {"name": uid("门店"), "parentid": top})["department"]["id"]
    a, b = employee(sim, department=[top]), employee(sim, department=[sub])
    mid = post(sim, text={"content": "部门"}, visible_range=senders(depts=[top]))
    assert task_list(sim, mid) == {a: 0, b: 0}


def test_tags_only_pushes_to_followers_of_tagged_customers(sim):
    (t,) = new_tags(sim, "朋友圈标签")
    e1, e2, e3 = employee(sim), employee(sim), employee(sim)
    c1a, _c1b = customers_of(sim, e1, 2)
    c2 = customer_of(sim, e2)
    customer_of(sim, e3)
    tag(sim, e1, c1a, t)
    tag(sim, e2, c2, t)
    r = add(sim, text={"content": "标签可见"}, visible_range={"external_contact_list": {"tag_list": [t, "etNoTag"]}})
    res = run_job(sim, r["jobid"])
    assert res["invalid_external_contact_list"] == {"tag_list": ["etNoTag"]}
    mid = res["moment_id"]
    assert task_list(sim, mid) == {e1: 0, e2: 0}
    assert [x["external_userid"] for x in customer_list(sim, mid, e1)["customer_list"]] == [c1a]
    assert [x["external_userid"] for x in customer_list(sim, mid, e2)["customer_list"]] == [c2]
    assert sim.call("externalcontact/get_moment_customer_list", {"moment_id": mid, "userid": e3})["errcode"] == 41061


def test_senders_and_tags(sim):
    (t,) = new_tags(sim, "双条件")
    e1, e2 = employee(sim), employee(sim)
    c1a, _c1b = customers_of(sim, e1, 2)
    c2 = customer_of(sim, e2)
    tag(sim, e1, c1a, t)
    tag(sim, e2, c2, t)  # e2 is not a sender
    mid = post(sim, text={"content": "x"}, visible_range={**senders(e1), "external_contact_list": {"tag_list": [t]}})
    assert task_list(sim, mid) == {e1: 0}
    assert [x["external_userid"] for x in customer_list(sim, mid, e1)["customer_list"]] == [c1a]


def test_neither_means_every_member_in_range(sim):
    mid = post(sim, text={"content": "all"})
    follow_users = sim.get("externalcontact/get_follow_user_list")["follow_user"]
    assert set(task_list(sim, mid)) == set(follow_users)


# --- publishing -----------------------------------------------------------------------------------
def test_publish_reaches_friends_only(sim):
    e = employee(sim)
    c1, c2, c3 = customers_of(sim, e, 3)
    mid = post(sim, text={"content": "发表"}, visible_range=senders(e))
    assert send_result(sim, mid, e)["customer_list"] == []  # not published yet
    sim.control("delete", {"userid": e, "external_userid": c3, "by": "customer"})
    out = publish(sim, mid, e)
    assert out["delivered"] == 2 and out["not_friend"] == 1
    assert task_list(sim, mid) == {e: 1}
    assert [x["external_userid"] for x in send_result(sim, mid, e)["customer_list"]] == [c1, c2]
    assert len(customer_list(sim, mid, e)["customer_list"]) == 3  # the selection is unchanged
    assert publish(sim, mid, e, expect_ok=False)["ok"] is False


def test_moment_caps_leave_customers_out(sim, sim_rules):
    sim_rules(moment_daily_cap=1)
    e = employee(sim)
    c1, c2 = customers_of(sim, e, 2)
    first = post(sim, text={"content": "1"}, visible_range=senders(e))
    sim.control("moment/employee_post", {"userid": e, "text": "个人", "external_userids": [c1]})  # counts too
    second = post(sim, text={"content": "2"}, visible_range=senders(e))
    out = publish(sim, second, e)
    assert out == {"ok": True, "delivered": 1, "over_cap": 1, "not_friend": 0}
    assert [x["external_userid"] for x in send_result(sim, second, e)["customer_list"]] == [c2]
    publish(sim, first, e)
    assert send_result(sim, first, e)["customer_list"] == []  # both at 1 today
    sim.advance(86400)
    third = post(sim, text={"content": "3"}, visible_range=senders(e))
    publish(sim, third, e)
    assert len(send_result(sim, third, e)["customer_list"]) == 2


def test_monthly_cap(sim, sim_rules):
    sim_rules(moment_monthly_cap=2)
    e = employee(sim)
    c = customer_of(sim, e)
    for i in range(3):
        m = post(sim, text={"content": str(i)}, visible_range=senders(e))
        publish(sim, m, e)
        expected = [c] if i < 2 else []
        assert [x["external_userid"] for x in send_result(sim, m, e)["customer_list"]] == expected


def test_skip_and_auto_publish(sim):
    e1, e2 = employee(sim), employee(sim)
    customer_of(sim, e1)
    customer_of(sim, e2)
    sim.control("mass/auto", {"probability": 1, "delay_s": 100, "seed": 1})
    try:
        mid = post(sim, text={"content": "auto"}, visible_range=senders(e1, e2))
    finally:
        sim.control("mass/auto", {"probability": 0})
    sim.control("moment/skip", {"moment_id": mid, "userid": e2})
    sim.advance(200)
    assert task_list(sim, mid) == {e1: 1, e2: 0}
    assert publish(sim, mid, e2, expect_ok=False)["ok"] is False


def test_cancel_accepts_get_and_post(sim):
    e = employee(sim)
    customer_of(sim, e)
    m1 = post(sim, text={"content": "c1"}, visible_range=senders(e))
    m2 = post(sim, text={"content": "c2"}, visible_range=senders(e))
    assert sim.call("externalcontact/cancel_moment_task", {"moment_id": m1})["errcode"] == 0
    assert sim.get("externalcontact/cancel_moment_task", moment_id=m2)["errcode"] == 0
    assert publish(sim, m1, e, expect_ok=False)["ok"] is False
    assert task_list(sim, m2) == {e: 0}
    assert sim.call("externalcontact/cancel_moment_task", {})["errcode"] == 41059
    assert sim.call("externalcontact/cancel_moment_task", {"moment_id": "momNope"})["errcode"] == 41060


def test_cancel_keeps_published_posts(sim):
    e = employee(sim)
    c = customer_of(sim, e)
    mid = post(sim, text={"content": "已发"}, visible_range=senders(e))
    publish(sim, mid, e)
    sim.call("externalcontact/cancel_moment_task", {"moment_id": mid})
    assert [x["external_userid"] for x in send_result(sim, mid, e)["customer_list"]] == [c]


# --- lists -----------------------------------------------------------------------------------------
def test_moment_list_span_limit_and_filters(sim, sim_rules):
    start = sim.advance(3600)  # a window of its own
    e = employee(sim)
    customer_of(sim, e)
    corp = [post(sim, text={"content": f"企业{i}"}, visible_range=senders(e)) for i in range(3)]
    personal = sim.control("moment/employee_post", {"userid": e, "text": "个人发表"})["moment_id"]
    body = {"start_time": start, "end_time": start + 600}
    r = sim.call("externalcontact/get_moment_list", body)
    assert {m["moment_id"] for m in r["moment_list"]} == set(corp) | {personal}
    mine = next(m for m in r["moment_list"] if m["moment_id"] == personal)
    assert mine["creator"] == e and mine["create_type"] == 1 and mine["text"] == {"content": "个人发表"}
    r = sim.call("externalcontact/get_moment_list", {**body, "filter_type": 0})
    assert {m["moment_id"] for m in r["moment_list"]} == set(corp)
    r = sim.call("externalcontact/get_moment_list", {**body, "creator": e})
    assert [m["moment_id"] for m in r["moment_list"]] == [personal]
    sim_rules(moment_list_max_limit=2)
    r = sim.call("externalcontact/get_moment_list", {**body, "limit": 100})  # clamped to 2
    assert len(r["moment_list"]) == 2 and r["next_cursor"]
    r2 = sim.call("externalcontact/get_moment_list", {**body, "limit": 100, "cursor": r["next_cursor"]})
    assert len(r2["moment_list"]) == 2 and r2["next_cursor"] == ""
    assert (
        sim.call("externalcontact/get_moment_list", {"start_time": start, "end_time": start + 30 * 86400})["errcode"]
        == 0
    )
    over = sim.call("externalcontact/get_moment_list", {"start_time": start, "end_time": start + 30 * 86400 + 1})
    assert over["errcode"] == 40058


def test_moment_list_shows_attachments(sim):
    start = sim.advance(3600)
    e = employee(sim)
    img = moment_image(sim)
    mid = post(
        sim,
        text={"content": "图"},
        attachments=[{"msgtype": "image", "image": {"media_id": img}}] * 2,
        visible_range=senders(e),
    )
    m = sim.call("externalcontact/get_moment_list", {"start_time": start, "end_time": start + 60})["moment_list"]
    m = next(x for x in m if x["moment_id"] == mid)
    assert m["image"] == [{"media_id": img}, {"media_id": img}]


def test_task_errors_and_paging(sim, sim_rules):
    es = [employee(sim) for _ in range(3)]
    mid = post(sim, text={"content": "p"}, visible_range=senders(*es))
    r = sim.call("externalcontact/get_moment_task", {"moment_id": mid, "limit": 2})
    assert len(r["task_list"]) == 2 and r["next_cursor"]
    r2 = sim.call("externalcontact/get_moment_task", {"moment_id": mid, "limit": 2, "cursor": r["next_cursor"]})
    assert len(r2["task_list"]) == 1 and r2["next_cursor"] == ""
    assert sim.call("externalcontact/get_moment_task", {})["errcode"] == 41059
    assert sim.call("externalcontact/get_moment_task", {"moment_id": "momNope"})["errcode"] == 41060
    personal = sim.control("moment/employee_post", {"userid": es[0], "text": "p"})["moment_id"]
    assert sim.call("externalcontact/get_moment_task", {"moment_id": personal})["errcode"] == 41067
    sim_rules(moment_page_max_limit=1)
    assert len(sim.call("externalcontact/get_moment_task", {"moment_id": mid, "limit": 1000})["task_list"]) == 1


def test_send_result_limit_and_paging(sim, sim_rules):
    e = employee(sim)
    cs = customers_of(sim, e, 5)
    mid = post(sim, text={"content": "s"}, visible_range=senders(e))
    publish(sim, mid, e)
    assert len(send_result(sim, mid, e)["customer_list"]) == 5
    sim_rules(moment_send_result_default_limit=2, moment_send_result_max_limit=3)
    assert len(send_result(sim, mid, e)["customer_list"]) == 2  # the default
    r = send_result(sim, mid, e, limit=10)  # clamped to the max
    assert len(r["customer_list"]) == 3
    r2 = send_result(sim, mid, e, limit=10, cursor=r["next_cursor"])
    assert [x["external_userid"] for x in r["customer_list"] + r2["customer_list"]] == cs
    personal = sim.control("moment/employee_post", {"userid": e, "text": "mine"})
    assert personal["delivered"] == 5
    assert len(send_result(sim, personal["moment_id"], e, limit=10)["customer_list"]) == 3


def test_comments(sim):
    e, other = employee(sim), employee(sim)
    customers_of(sim, e, 30)
    mid = post(sim, text={"content": "评论"}, visible_range=senders(e))
    body = {"moment_id": mid, "userid": e}
    assert sim.call("externalcontact/get_moment_comments", body)["errcode"] == 41062
    assert sim.call("externalcontact/get_moment_comments", {**body, "userid": other})["errcode"] == 41061
    publish(sim, mid, e)
    sim.advance(2 * 86400)
    r = sim.call("externalcontact/get_moment_comments", body)
    assert r["errcode"] == 0 and isinstance(r["comment_list"], list) and isinstance(r["like_list"], list)
    for item in r["comment_list"] + r["like_list"]:
        assert set(item) == {"external_userid", "create_time"}
    assert r == sim.call("externalcontact/get_moment_comments", body)  # stable
