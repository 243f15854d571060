"""Customer Moments (客户朋友圈, part 2 §2): corp posts the employees publish, and their own posts.

add_moment_task is asynchronous: it answers a jobid (valid 24 h); the job goes 1 started →
2 running → 3 done on successive ticks of the emulator (about a second each), and only then the
moment, its tasks (one per executing employee) and the selected customers exist. Nothing is seen
by a customer until the employee publishes (``/sim/moment/publish`` or the ``/sim/mass/auto``
setting). A per-customer cap (rules moment_daily_cap / moment_monthly_cap, off by default) silently
leaves customers out of get_moment_send_result (part 2 §2.10).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Count

from siyu.wecom_sim import clock, rules, schemas
from siyu.wecom_sim.control import ControlError, action, on_tick
from siyu.wecom_sim.endpoints._paging import page_limit, paginate
from siyu.wecom_sim.endpoints.mass import (
    _excerpt,
    active_friends,
    auto_config,
    auto_confirm_at,
    by_creator,
    chunks,
    dedup,
    employee_task,
    list_window,
    own_send_audience,
    str_list,
)
from siyu.wecom_sim.endpoints.media import check_media
from siyu.wecom_sim.endpoints.org import dept_subtree
from siyu.wecom_sim.framework import SimRequest, WeComError, endpoint, new_id
from siyu.wecom_sim.models import (
    Department,
    Follow,
    Moment,
    MomentTask,
    MomentVisibility,
    Tag,
    TagGroup,
    User,
)

MOMENT_TYPES = ("image", "video", "link")


def _moment_media(media_id: Any, now: int, kind: str) -> None:
    """A Moments attachment must come from media/upload_attachment with attachment_type 1
    (doc 96351; another scene → 41072, mapping unverified); ≤ 10 MB (41064)."""
    m = check_media(media_id, now, kind=kind)
    if m.kind != "attachment" or m.attachment_type != 1:
        raise WeComError(41072)
    if m.size > rules.get().attachment_max_bytes:
        raise WeComError(41064)


def validate_moment_content(body: dict, now: int) -> tuple[dict | None, list[dict]]:  # noqa: C901 - one check per WeCom rule, in the order WeCom reports them
    """Text and attachments of add_moment_task (doc 96351, R6). errmsg strings are the doc's."""
    r = rules.get()
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if content is not None and not isinstance(content, str):
        raise WeComError(40058, "invalid text size")
    if content and len(content) > r.moment_text_max_chars:
        raise WeComError(40058, "invalid text size")
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list):
        raise WeComError(40058, "invalid attachments msgtype")
    types = []
    for a in attachments:
        t = a.get("msgtype") if isinstance(a, dict) else None
        if t not in MOMENT_TYPES:
            raise WeComError(41065)
        types.append(t)
    if len(set(types)) > 1:
        raise WeComError(40058, "invalid attachments msgtype")
    if types:
        cap = r.moment_max_images if types[0] == "image" else 1
        if len(types) > cap:
            raise WeComError(40058, "invalid attachments size")
    out = []
    for a in attachments:
        t = a["msgtype"]
        obj = a.get(t)
        if not isinstance(obj, dict):
            raise WeComError(40058, "invalid msg")
        if t in ("image", "video"):
            if not obj.get("media_id"):
                raise WeComError(40058, "invalid msg")
            _moment_media(obj["media_id"], now, t)
        else:
            if not obj.get("url"):
                raise WeComError(41010)
            title = obj.get("title") or ""
            if len(title.encode("utf-8")) > r.moment_link_title_max_bytes:
                raise WeComError(40058, "invalid link title size")
            if obj.get("media_id"):
                _moment_media(obj["media_id"], now, "image")
        out.append({"msgtype": t, t: obj})
    if not content and not out:
        raise WeComError(44004)
    return ({"content": content} if content else None), out


def _visible_range(body: dict) -> dict:
    vr = body.get("visible_range") or {}
    if not isinstance(vr, dict):
        raise WeComError(40058, "invalid visible_range")
    sl = vr.get("sender_list") or {}
    el = vr.get("external_contact_list") or {}
    if not isinstance(sl, dict) or not isinstance(el, dict):
        raise WeComError(40058, "invalid visible_range")
    users = dedup(str_list(sl.get("user_list"), "sender_list.user_list"))
    if len(users) > 100000:
        raise WeComError(40058, "invalid sender_list.user_list: at most 100000")
    depts = sl.get("department_list") or []
    if not isinstance(depts, list):
        raise WeComError(40058, "invalid sender_list.department_list")
    try:
        depts = dedup([int(d) for d in depts])
    except (TypeError, ValueError):
        raise WeComError(40058, "invalid sender_list.department_list") from None
    tags = dedup(str_list(el.get("tag_list"), "external_contact_list.tag_list"))
    return {"user_list": users, "department_list": depts, "tag_list": tags}


@endpoint("externalcontact/add_moment_task", methods=("POST",))
def add_moment_task(req: SimRequest) -> dict:
    text, attachments = validate_moment_content(req.body, req.now)
    vr = _visible_range(req.body)
    m = Moment.objects.create(
        moment_id=new_id("mom", 30),
        jobid=new_id("", 40),
        creator="",
        create_type=0,
        create_time=req.now,
        visible_type=0 if vr["tag_list"] else 1,
        text=text,
        attachments=attachments,
        visible_range=vr,
        job_result={"started_at": req.now},
        job_status=1,
    )
    return {"jobid": m.jobid}


def _build_job(m: Moment, now: int) -> None:
    """Resolve the visible range (doc 96351) into tasks and selected customers."""
    vr = m.visible_range or {}
    users_req, depts_req, tags_req = vr.get("user_list", []), vr.get("department_list", []), vr.get("tag_list", [])
    contact_users = {u.userid: u for u in User.objects.filter(status=User.STATUS_ACTIVE, contact_enabled=True)}
    invalid_users = [u for u in users_req if u not in contact_users]
    known_depts = set(Department.objects.filter(id__in=depts_req).values_list("id", flat=True)) if depts_req else set()
    invalid_depts = [d for d in depts_req if d not in known_depts]
    # Corp customer tags only: rule-group (规则组) tags, deleted tags and unknown ids are invalid.
    valid_tags: set[str] = set()
    if tags_req:
        rule_groups = set(TagGroup.objects.exclude(strategy_id=None).values_list("group_id", flat=True))
        dead_groups = set(TagGroup.objects.filter(deleted=True).values_list("group_id", flat=True))
        for t in Tag.objects.filter(id__in=tags_req, deleted=False):
            if t.group_id not in rule_groups and t.group_id not in dead_groups:
                valid_tags.add(t.id)
    invalid_tags = [t for t in tags_req if t not in valid_tags]

    def tagged(f: Follow) -> bool:
        return not tags_req or bool(valid_tags.intersection(f.tag_ids))

    if users_req or depts_req:
        # sender_list given: those executors; with tags, only their tagged customers see it.
        executors = [u for u in users_req if u in contact_users]
        if known_depts:
            depts = dept_subtree(sorted(known_depts))
            executors += sorted(u.userid for u in contact_users.values() if depts.intersection(u.department))
        executors = dedup(executors)
    elif tags_req:
        # Only tags: pushed to the followers of the customers carrying those tags.
        executors = sorted(
            {f.userid for f in Follow.objects.filter(status=Follow.ACTIVE, userid__in=list(contact_users)) if tagged(f)}
        )
    else:
        # Neither: every member in the app's visible range (every active contact-enabled member).
        executors = sorted(contact_users)
    cfg = auto_config()
    tasks = []
    rows = []
    for u in executors:
        tasks.append(MomentTask(moment=m, userid=u, confirm_at=auto_confirm_at(cfg, m.moment_id, u, now)))
        for f in Follow.objects.filter(userid=u, status=Follow.ACTIVE).order_by("id"):
            if tagged(f):
                rows.append(MomentVisibility(moment=m, userid=u, external_userid=f.external_userid))
    MomentTask.objects.bulk_create(tasks, batch_size=500)
    MomentVisibility.objects.bulk_create(rows, batch_size=500)
    m.job_status = 3
    m.job_result = {
        "started_at": (m.job_result or {}).get("started_at", m.create_time),
        "errcode": 0,
        "errmsg": "ok",
        "moment_id": m.moment_id,
        "invalid_sender_list": {"user_list": invalid_users, "department_list": invalid_depts},
        "invalid_external_contact_list": {"tag_list": invalid_tags},
    }
    m.save(update_fields=["job_status", "job_result"])


@on_tick
def run_moment_jobs(now: int) -> None:
    """Advance add_moment_task jobs one step per tick: 1 started → 2 running → 3 done."""
    for m in Moment.objects.filter(job_status__in=(1, 2)).order_by("create_time")[:50]:
        if m.job_status == 1:
            m.job_status = 2
            m.save(update_fields=["job_status"])
        else:
            _build_job(m, now)


@endpoint("externalcontact/get_moment_task_result", methods=("GET",))
def get_moment_task_result(req: SimRequest) -> dict:
    jobid = req.query.get("jobid")
    if not jobid:
        raise WeComError(40088)
    m = Moment.objects.filter(jobid=jobid).first()
    if m is None or m.create_time + rules.get().moment_job_ttl_s <= req.now:
        raise WeComError(40088)  # unknown, or older than 24 h
    out: dict[str, Any] = {"status": m.job_status, "type": "add_moment_task"}
    if m.job_status == 3:
        res = dict(m.job_result)
        res.pop("started_at", None)
        out["result"] = res
    else:
        out["result"] = {}
    return out


def get_moment(moment_id: Any) -> Moment:
    if not moment_id:
        raise WeComError(41059)
    m = (
        Moment.objects.filter(moment_id=moment_id, job_status=3, deleted=False).first()
        if isinstance(moment_id, str)
        else None
    )
    if m is None:
        raise WeComError(41060)
    return m


def _moment_json(m: Moment) -> dict:
    out: dict[str, Any] = {"moment_id": m.moment_id}
    if m.create_type == 1 and m.creator:
        out["creator"] = m.creator  # not returned for posts created by add_moment_task
    out.update({"create_time": m.create_time, "create_type": m.create_type, "visible_type": m.visible_type})
    if m.text:
        out["text"] = m.text
    images = [a["image"] for a in m.attachments if a.get("msgtype") == "image"]
    if images:
        out["image"] = [{"media_id": i["media_id"]} for i in images]
    for a in m.attachments:
        if a.get("msgtype") == "video":
            v = a["video"]
            out["video"] = {"media_id": v["media_id"], "thumb_media_id": v.get("thumb_media_id") or v["media_id"]}
        elif a.get("msgtype") == "link":
            out["link"] = {"title": a["link"].get("title", ""), "url": a["link"]["url"]}
    return out


@endpoint("externalcontact/get_moment_list", methods=("POST",))
def get_moment_list(req: SimRequest) -> dict:
    """获取企业全部的发表列表 (doc 96352, R7): span ≤ 30 days, limit ≤ 20; deleted ones hidden."""
    b = req.body
    r = rules.get()
    days = r.moment_list_max_span_days
    start, end, filter_type = list_window(b, days, f"invalid time range: at most {days} days")
    limit = page_limit(b.get("limit"), r.moment_list_max_limit, r.moment_list_max_limit)
    qs = by_creator(
        Moment.objects.filter(job_status=3, deleted=False, create_time__gte=start, create_time__lte=end), b, filter_type
    )
    page, nxt = paginate(qs.order_by("create_time", "moment_id"), b.get("cursor"), limit)
    return {"next_cursor": nxt, "moment_list": [_moment_json(m) for m in page]}


@endpoint("externalcontact/get_moment_task", methods=("POST",))
def get_moment_task(req: SimRequest) -> dict:
    """企业发表的成员执行情况: publish_status 0 not published / 1 published (corp posts only)."""
    b = req.body
    r = rules.get()
    m = get_moment(b.get("moment_id"))
    if m.create_type != 0:
        raise WeComError(41067)
    limit = page_limit(b.get("limit"), r.moment_page_default_limit, r.moment_page_max_limit)
    page, nxt = paginate(m.tasks.order_by("id"), b.get("cursor"), limit)
    return {"next_cursor": nxt, "task_list": [{"userid": t.userid, "publish_status": t.publish_status} for t in page]}


def _executor_task(m: Moment, userid: Any) -> MomentTask:
    if not userid:
        raise WeComError(41009)
    task = m.tasks.filter(userid=userid).first()
    if task is None:
        raise WeComError(41061)
    return task


@endpoint("externalcontact/get_moment_customer_list", methods=("POST",))
def get_moment_customer_list(req: SimRequest) -> dict:
    """发表时选择的可见范围: the customers selected for this employee's post."""
    b = req.body
    r = rules.get()
    m = get_moment(b.get("moment_id"))
    task = _executor_task(m, b.get("userid"))
    limit = page_limit(b.get("limit"), r.moment_page_default_limit, r.moment_page_max_limit)
    qs = MomentVisibility.objects.filter(moment=m, userid=task.userid).order_by("id")
    page, nxt = paginate(qs, b.get("cursor"), limit)
    return {
        "next_cursor": nxt,
        "customer_list": [{"userid": v.userid, "external_userid": v.external_userid} for v in page],
    }


@endpoint("externalcontact/get_moment_send_result", methods=("POST",))
def get_moment_send_result(req: SimRequest) -> dict:
    """发表后的可见客户列表: the customers it reached (limit default 3000, max 5000). Customers over
    the Moments cap, or no longer friends at publishing, are left out; before the employee
    publishes the list is empty."""
    b = req.body
    r = rules.get()
    m = get_moment(b.get("moment_id"))
    task = _executor_task(m, b.get("userid"))
    limit = page_limit(b.get("limit"), r.moment_send_result_default_limit, r.moment_send_result_max_limit)
    qs = MomentVisibility.objects.filter(moment=m, userid=task.userid, delivered=True).order_by("id")
    page, nxt = paginate(qs, b.get("cursor"), limit)
    return {"next_cursor": nxt, "customer_list": [{"external_userid": v.external_userid} for v in page]}


def _h(*parts: Any) -> int:
    return int(hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:12], 16)


@endpoint("externalcontact/get_moment_comments", methods=("POST",))
def get_moment_comments(req: SimRequest) -> dict:
    """Likes and comments on one employee's post (no comment text is returned).

    Simulated deterministically: about 6 % of the customers who saw the post like it and 2 %
    comment, at a pseudo-random time within a day of publishing (only those already past)."""
    b = req.body
    m = get_moment(b.get("moment_id"))
    task = _executor_task(m, b.get("userid"))
    if task.publish_status != 1:
        raise WeComError(41062)
    likes, comments = [], []
    for v in MomentVisibility.objects.filter(moment=m, userid=task.userid, delivered=True).order_by("id"):
        h = _h(m.moment_id, v.external_userid)
        at = (v.delivered_time or task.publish_time or m.create_time) + 60 + (h // 10000) % 86400
        if at > req.now:
            continue
        if h % 100 < 6:
            likes.append({"external_userid": v.external_userid, "create_time": at})
        if (h // 100) % 100 < 2:
            comments.append({"external_userid": v.external_userid, "create_time": at + 30})
    return {"comment_list": comments, "like_list": likes}


@endpoint("externalcontact/cancel_moment_task", methods=("POST", "GET"))
def cancel_moment_task(req: SimRequest) -> dict:
    """停止发表企业朋友圈: employees who have not published never will; published posts stay (R8).
    The method is unverified (LWC labels it GET with a JSON body): both are accepted."""
    m = get_moment(req.param("moment_id"))
    if m.create_type != 0:
        raise WeComError(41067)
    if not m.cancelled:
        m.cancelled = True
        m.save(update_fields=["cancelled"])
        m.tasks.filter(publish_status=0).update(confirm_at=None)
    return {}


# --- publishing -------------------------------------------------------------------------------
def _delivered_counts(ids: list[str], since: int, until: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in chunks(ids):
        rows = (
            MomentVisibility.objects.filter(
                external_userid__in=part, delivered=True, delivered_time__gte=since, delivered_time__lt=until
            )
            .values("external_userid")
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row["external_userid"]] = row["n"]
    return counts


def publish_task(task: MomentTask, at: int) -> dict:
    """The employee publishes: the post reaches each selected customer who is still a friend and
    under the Moments cap (rules moment_daily_cap / moment_monthly_cap; 0 = no cap)."""
    r = rules.get()
    rows = list(
        MomentVisibility.objects.filter(moment_id=task.moment_id, userid=task.userid, delivered=False).order_by("id")
    )
    ids = dedup(v.external_userid for v in rows)
    friends = active_friends(task.userid, ids)
    day0 = clock.day_start(at)
    month0 = clock.month_start(at)
    daily = _delivered_counts(ids, day0, day0 + 86400) if r.moment_daily_cap else {}
    monthly = _delivered_counts(ids, month0, month0 + clock.days_in_month(at) * 86400) if r.moment_monthly_cap else {}
    delivered = capped = 0
    changed = []
    for v in rows:
        x = v.external_userid
        if x not in friends:
            continue
        if (r.moment_daily_cap and daily.get(x, 0) >= r.moment_daily_cap) or (
            r.moment_monthly_cap and monthly.get(x, 0) >= r.moment_monthly_cap
        ):
            capped += 1
            continue
        v.delivered, v.delivered_time = True, at
        daily[x] = daily.get(x, 0) + 1
        monthly[x] = monthly.get(x, 0) + 1
        delivered += 1
        changed.append(v)
    MomentVisibility.objects.bulk_update(changed, ["delivered", "delivered_time"], batch_size=500)
    task.publish_status, task.publish_time, task.confirm_at = 1, at, None
    task.save(update_fields=["publish_status", "publish_time", "confirm_at"])
    return {"delivered": delivered, "over_cap": capped, "not_friend": len(rows) - delivered - capped}


@on_tick
def publish_due_tasks(now: int) -> None:
    due = MomentTask.objects.filter(
        publish_status=0, ignored=False, confirm_at__isnull=False, confirm_at__lte=now, moment__cancelled=False
    ).order_by("confirm_at", "id")[:200]
    for task in due:
        publish_task(task, task.confirm_at)


def _moment_task(body: dict) -> MomentTask:
    return employee_task(MomentTask, "moment", "moment_id", body)


@action("moment/pending", schemas.PendingTasks)
def moment_pending(body: dict) -> dict:
    """Moment tasks employees have not published yet (newest first): {moment_id, userid,
    create_time, text} for /sim/moment/publish or /sim/moment/skip; ``userid`` narrows."""
    qs = MomentTask.objects.filter(
        publish_status=0, ignored=False, moment__cancelled=False, moment__deleted=False
    ).select_related("moment")
    if body.get("userid"):
        qs = qs.filter(userid=body["userid"])
    rows = qs.order_by("-moment__create_time", "moment_id", "userid")[: int(body.get("limit") or 100)]
    return {
        "tasks": [
            {
                "moment_id": t.moment_id,
                "userid": t.userid,
                "create_time": t.moment.create_time,
                "text": _excerpt(t.moment.text),
            }
            for t in rows
        ]
    }


@action("moment/publish", schemas.MomentTask)
def moment_publish(body: dict) -> dict:
    """The employee publishes the company's Moment to their customers (客户朋友圈)."""
    task = _moment_task(body)
    if task.moment.cancelled:
        raise ControlError("the Moment was cancelled (cancel_moment_task)")
    if task.ignored:
        raise ControlError("the employee chose not to publish this Moment")
    if task.publish_status == 1:
        raise ControlError("the employee already published this Moment")
    return publish_task(task, clock.now())


@action("moment/skip", schemas.MomentTask)
def moment_skip(body: dict) -> dict:
    """The employee never publishes this Moment."""
    task = _moment_task(body)
    if task.publish_status == 1:
        raise ControlError("the employee already published this Moment")
    task.ignored, task.confirm_at = True, None
    task.save(update_fields=["ignored", "confirm_at"])
    return {}


@action("moment/employee_post", schemas.OwnSend)
def moment_employee_post(body: dict) -> dict:
    """An employee posts from the client (个人发表, create_type 1) to all their customers or to
    ``external_userids``; published at once."""
    userid, ids = own_send_audience(body)
    now = clock.now()
    # The client checks a post like add_moment_task checks a corp one (doc 96351).
    text, attachments = validate_moment_content(
        {"text": {"content": body["text"]} if body.get("text") else None, "attachments": body.get("attachments")}, now
    )
    m = Moment.objects.create(
        moment_id=new_id("mom", 30),
        jobid=None,
        creator=userid,
        create_type=1,
        create_time=now,
        visible_type=0 if body.get("external_userids") is not None else 1,
        text=text,
        attachments=attachments,
        job_status=3,
    )
    task = MomentTask.objects.create(moment=m, userid=userid)
    MomentVisibility.objects.bulk_create(
        [MomentVisibility(moment=m, userid=userid, external_userid=x) for x in ids], batch_size=500
    )
    return {"moment_id": m.moment_id, **publish_task(task, now)}
