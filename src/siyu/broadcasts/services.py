"""Writes and rules of broadcasts: drafts, scheduling, the resumable executor, result sync,
remind and cancel. WeCom is only called outside write transactions (siyu.wecom.gateway)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext

from siyu.accounts.selectors import DataScope
from siyu.broadcasts import audience as aud
from siyu.broadcasts import moment_tags, planning
from siyu.broadcasts.models import Batch, Broadcast, Media, Receipt, Recipient
from siyu.core import timers
from siyu.customers.tags import selectors as tag_selectors
from siyu.org import selectors as org_selectors
from siyu.segments import selectors as segment_selectors
from siyu.segments import services as segment_services
from siyu.wecom import gateway
from siyu.wecom.gateway import WeComAPIError

logger = logging.getLogger("siyu.broadcasts")

START_TIMER = "broadcasts.start"
SYNC_TIMER = "broadcasts.sync"
MEDIA_TTL_S = 3 * 24 * 3600  # media/upload: a temporary media_id is valid 3 days
MEDIA_MARGIN_S = 6 * 3600  # re-upload when less than this is left
FIRST_SYNC_S = 60  # a run whose call budget ran out continues after this
FAST_FOR_S = 24 * 3600  # sync every SIYU_BROADCAST_SYNC_FAST_S during the first day
QUOTA_CODES = (45009, 45033, -1)  # frequency / concurrency limits, busy: back off
QUOTA_BACKOFF_S = 600
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")
MAX_ATTACHMENTS = 9  # add_msg_template doc 92135
TEXT_MAX_BYTES = 4000


def sync_timer_key(pk: int) -> str:
    """The key of a broadcast's one pending result-sync timer."""
    return f"broadcast:{pk}:sync"


class BroadcastError(Exception):
    pass


TimerHandler = Callable[[dict[str, Any]], None]
# siyu.core.timers.handler has no return annotation yet (the kernel is typed in its own change):
# a typed view of it, so the handlers below stay typed
_timer_handler = cast(Callable[[str], Callable[[TimerHandler], TimerHandler]], timers.handler)


def _creator(user: User | AnonymousUser | None) -> User | None:
    """The signed-in user (the default user model), None for anonymous or no user."""
    return user if isinstance(user, User) and user.is_authenticated else None


# --- drafts ---------------------------------------------------------------------------------------
def save_draft(
    *,
    kind: str,
    name: str,
    text: str,
    attachments: list[dict[str, Any]],
    audience: dict[str, Any],
    scope: DataScope,
    user: User | AnonymousUser | None = None,
    send_at: datetime | None = None,
    broadcast: Broadcast | None = None,
) -> Broadcast:
    if broadcast is not None and broadcast.status != Broadcast.DRAFT:
        raise BroadcastError("only a draft can be edited")
    aud_json = aud.from_json({**audience, "type": aud.type_for(kind, audience)}).to_json()
    aud_json["scope"] = aud.scope_to_json(scope)
    b = broadcast or Broadcast(created_by=_creator(user))
    b.kind, b.name, b.text, b.attachments, b.audience, b.send_at = kind, name, text, attachments, aud_json, send_at
    b.save()
    return b


# what an execution adds to the audience (the key range, the segment's snapshot, a Moment's tag):
# a copy starts without them, so it is planned afresh
RUN_KEYS = ("plan_hi", "plan_at", "snapshot_id", "mirror")


def copy(b: Broadcast, user: User | AnonymousUser | None = None) -> Broadcast:
    return Broadcast.objects.create(
        kind=b.kind,
        name=f"{b.name} (copy)"[:100],
        text=b.text,
        attachments=b.attachments,
        audience={k: v for k, v in (b.audience or {}).items() if k not in RUN_KEYS},
        created_by=_creator(user),
    )


def delete_draft(b: Broadcast) -> None:
    if b.status != Broadcast.DRAFT:
        raise BroadcastError("only a draft can be deleted")
    b.delete()


def submit(b: Broadcast) -> Broadcast:
    """Send now or at ``send_at``: a timer starts the execution in a worker."""
    with transaction.atomic():
        b = Broadcast.objects.select_for_update().get(id=b.id)
        if b.status != Broadcast.DRAFT:
            raise BroadcastError("already submitted")
        at = b.send_at.timestamp() if b.send_at else time.time()
        b.status = Broadcast.SCHEDULED
        b.save(update_fields=["status", "updated_at"])
        timers.schedule(START_TIMER, at, {"id": b.id}, key=f"broadcast:{b.id}:start")
    return b


@_timer_handler(START_TIMER)
def on_start_timer(payload: dict[str, Any]) -> None:
    # lazy: tasks.py imports this module (its tasks run the executor): a cycle inside the app
    from siyu.broadcasts.tasks import execute

    execute.enqueue(int(payload["id"]))  # the task row commits with the timer's done mark


@_timer_handler("broadcasts.resume")
def on_resume_timer(payload: dict[str, Any]) -> None:
    # lazy: tasks.py imports this module (its tasks run the executor): a cycle inside the app
    from siyu.broadcasts.tasks import execute

    execute.enqueue(int(payload["id"]))


@_timer_handler(SYNC_TIMER)
def on_sync_timer(payload: dict[str, Any]) -> None:
    # lazy: tasks.py imports this module (its tasks run the executor): a cycle inside the app
    from siyu.broadcasts.tasks import sync

    sync.enqueue(int(payload["id"]))


def resume_orphans() -> int:
    """Worker start-up: broadcasts whose executor died get a new one (it waits out the lease)."""
    # lazy: tasks.py imports this module (its tasks run the executor): a cycle inside the app
    from siyu.broadcasts.tasks import execute

    n = 0
    # every running broadcast: if its executor is alive, the new one finds the lease held and ends
    for bid in Broadcast.objects.filter(status__in=(Broadcast.PLANNING, Broadcast.SENDING)).values_list(
        "id", flat=True
    ):
        execute.enqueue(bid)
        n += 1
    return n


def resume_live_syncs() -> int:
    """Worker start-up: every sent broadcast whose results WeCom may still change has a pending
    sync timer (one lost to a failed task is scheduled again; a pending one is kept). Spread like
    the regular syncs, so a restart does not read every task at once."""
    now = time.time()
    since = timezone.now() - timedelta(seconds=settings.SIYU_BROADCAST_SYNC_FOR_S)
    n = 0
    for b in Broadcast.objects.filter(status=Broadcast.SENT, sent_at__gt=since).only("id", "totals", "sent_at"):
        if (b.totals or {}).get("final"):
            continue
        at = now + settings.SIYU_BROADCAST_SYNC_FIRST_S + (b.id * 7919) % max(1, settings.SIYU_BROADCAST_SYNC_FAST_S)
        if timers.schedule(SYNC_TIMER, at, {"id": b.id}, key=sync_timer_key(b.id)) is not None:
            n += 1
    return n


# --- lease: one executor per broadcast ---------------------------------------------------------------
def _lease_s() -> float:
    return float(getattr(settings, "SIYU_WORKER_LEASE_S", 60))


class LeaseLost(Exception):
    pass


class Retry(Exception):
    pass


RESUME_TIMER = "broadcasts.resume"
RETRY_AFTER_S = 30


class Executor:
    """Runs a broadcast to the end: plan → batch → send. Any step may be interrupted (the process
    killed); a new executor continues from the committed state without losing or repeating a target."""

    def __init__(self, b: Broadcast, owner: str | None = None, pace_per_min: int | None = None):
        self.b = b
        self.owner = owner or f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.pace = pace_per_min or settings.SIYU_MASS_CALLS_PER_MIN
        self._window = (0, 0)
        self._last_call = 0.0

    def acquire(self, wait: bool = True) -> bool:
        deadline = time.time() + 3 * _lease_s() + 5
        while True:
            now = time.time()
            n = Broadcast.objects.filter(
                Q(lease_until__lt=now) | Q(lease_owner=self.owner), id=self.b.id, status__in=Broadcast.RUNNING
            ).update(lease_owner=self.owner, lease_until=now + _lease_s())
            if n:
                return True
            if (
                not wait
                or now > deadline
                or not Broadcast.objects.filter(id=self.b.id, status__in=Broadcast.RUNNING).exists()
            ):
                return False
            time.sleep(min(1.0, _lease_s() / 4))

    def renew(self) -> None:
        n = Broadcast.objects.filter(id=self.b.id, lease_owner=self.owner).update(lease_until=time.time() + _lease_s())
        if not n:
            raise LeaseLost()

    def release(self) -> None:
        Broadcast.objects.filter(id=self.b.id, lease_owner=self.owner).update(lease_owner="", lease_until=0)

    def _phase(self, phase: str, **extra: Any) -> None:
        fields = {"phase": phase, **extra}
        Broadcast.objects.filter(id=self.b.id, lease_owner=self.owner).update(**fields)
        for k, v in fields.items():
            setattr(self.b, k, v)

    def run(self) -> Broadcast:
        if not self.acquire():
            return self.b
        try:
            self.b.refresh_from_db()
            if self.b.status == Broadcast.SCHEDULED:
                self._phase("plan", status=Broadcast.PLANNING, started_at=timezone.now())
            if self.b.phase == "plan":
                self.plan()
                self._phase("batch" if self.b.kind != Broadcast.MOMENT else "send", status=Broadcast.SENDING)
            if self.b.phase == "batch":
                planning.batch_all(self.b)
                self.renew()
                self._phase("send")
            if self.b.phase == "send":
                if self.b.kind == Broadcast.MOMENT:
                    self.send_moment()
                else:
                    self.send_batches()
                self._phase("sync", status=Broadcast.SENT, sent_at=timezone.now())
                Broadcast.objects.filter(id=self.b.id).update(totals=totals(self.b))
                # the first result sync soon after sending (employees often confirm at once)
                first = time.time() + settings.SIYU_BROADCAST_SYNC_FIRST_S
                timers.schedule(SYNC_TIMER, first, {"id": self.b.id}, key=sync_timer_key(self.b.id))
        except LeaseLost:
            logger.warning("broadcast %s: lease lost, another executor continues", self.b.id)
        except Retry as e:
            logger.warning("broadcast %s: %s; retrying in %s s", self.b.id, e, RETRY_AFTER_S)
            timers.schedule(
                RESUME_TIMER, time.time() + RETRY_AFTER_S, {"id": self.b.id}, key=f"broadcast:{self.b.id}:resume"
            )
        except Exception as e:
            logger.exception("broadcast %s failed", self.b.id)
            Broadcast.objects.filter(id=self.b.id, lease_owner=self.owner).update(
                status=Broadcast.FAILED, error=gateway.redact(e)[:2000]
            )
            with contextlib.suppress(Exception):  # the failure above is the one to report
                moment_tags.drop_unsent_tag(self.b)
            raise
        finally:
            self.release()
        self.b.refresh_from_db()
        return self.b

    # --- steps ------------------------------------------------------------------------------------
    def plan(self) -> None:
        hi = self.b.audience.get("plan_hi")
        if hi is None:  # fix the key range once: customers added later are not in this broadcast
            hi = planning.key_bounds(self.b)
            with transaction.atomic():  # the snapshot and the audience naming it commit together
                self.freeze_segment()
                self.b.audience["plan_hi"] = hi
                self.b.audience["plan_at"] = int(time.time())
                Broadcast.objects.filter(id=self.b.id).update(audience=self.b.audience)
        now = int(self.b.audience.get("plan_at") or time.time())
        while planning.plan_step(self.b, int(hi), now):
            self.renew()
        if moment_tags.is_segment_moment(self.b):
            self.tag_segment()

    def freeze_segment(self) -> None:
        """A segment audience is frozen when planning starts: its members now (a snapshot), so
        whoever joins or leaves the segment later does not change this broadcast's targets."""
        a = self.b.audience
        if a.get("type") != "segment" or a.get("snapshot_id"):
            return
        scope = aud.scope_from_json(a.get("scope"))
        snap = segment_services.snapshot_segment(int(a["segment_id"]), scope, purpose=f"broadcast:{self.b.id}")
        a["snapshot_id"] = snap

    def tag_segment(self) -> None:
        """A Moment to a segment: a corp tag made for this send, put on every active relation of
        the planned members' customers (moment_tags), progress kept in ``audience["mirror"]``."""
        a = self.b.audience
        m = a.setdefault("mirror", {})
        if m.get("done"):
            return
        scope = aud.scope_from_json(a.get("scope"))
        if not m.get("tag_name"):  # named once: a successor finds (or creates) the same tag
            seg_name = segment_selectors.segment_name(int(a["segment_id"]))
            m["tag_name"] = moment_tags.choose_tag_name(seg_name, self.b.id)
            self._save_audience(a)
        if not m.get("tag_id"):
            m["tag_id"], m["tag_wecom_id"] = moment_tags.ensure_tag(str(m["tag_name"]))
            self._save_audience(a)
        self.renew()
        senders = aud.from_json(a).sender_ids(scope)

        def save(audience: dict[str, Any]) -> None:
            self._save_audience(audience)
            self.renew()

        moment_tags.tag_members(self.b, scope, senders, save)

    def _save_audience(self, audience: dict[str, Any]) -> None:
        if not Broadcast.objects.filter(id=self.b.id, lease_owner=self.owner).update(audience=audience):
            raise LeaseLost()
        self.b.audience = audience

    def _pace(self) -> None:
        """At most ``pace`` add_msg_template calls per clock minute (the corp's API quota)."""
        if not self.pace:
            return
        minute, count = self._window
        # spaced evenly (60/pace s apart) so a call started late in one minute cannot reach WeCom in
        # the next minute's window, and at most ``pace`` per clock minute
        gap = 60.0 / self.pace - (time.time() - self._last_call)
        if gap > 0:
            time.sleep(gap)
        now = time.time()
        if int(now // 60) != minute:
            minute, count = int(now // 60), 0
        if count >= self.pace:
            time.sleep((minute + 1) * 60 - now + 0.05)
            self.renew()
            minute, count = int(time.time() // 60), 0
        self._window = (minute, count + 1)
        self._last_call = time.time()

    def send_batches(self) -> None:
        content = None
        for bt in Batch.objects.filter(broadcast=self.b, status__in=(Batch.PENDING, Batch.SENDING)).order_by("id"):
            if Broadcast.objects.filter(id=self.b.id, status=Broadcast.CANCELLED).exists():
                return
            if bt.status == Batch.SENDING and self.reconcile(bt):
                continue
            if content is None:
                content = build_content(self.b)
            targets = list(bt.rows().order_by("id").values_list("target", flat=True))
            body = {
                "chat_type": "group" if self.b.kind == Broadcast.GROUP else "single",
                "sender": bt.userid,
                **personalise(content, bt),
            }
            body["chat_id_list" if self.b.kind == Broadcast.GROUP else "external_userid"] = targets
            self._pace()
            self.renew()  # still ours right before the call: no other executor can be sending this batch
            Batch.objects.filter(id=bt.id).update(status=Batch.SENDING, send_started_at=time.time())
            try:
                res = gateway.contact().external_contact.add_msg_template(body)
            except WeComAPIError as e:
                if e.errcode is None or e.errcode in (-1, 45009, 45033):
                    # no answer, busy or over the frequency limit (after the gateway's backoff): the
                    # message may or may not exist — leave the batch "sending" for reconciliation and
                    # try again shortly
                    raise Retry(str(e)) from None
                with transaction.atomic():
                    Batch.objects.filter(id=bt.id).update(
                        status=Batch.FAILED, error=gateway.redact(e)[:1000], results_synced=True
                    )
                    # 41048: none of the batch's customers can receive it (none still a friend)
                    reason = "not_friend" if e.errcode == 41048 else f"errcode:{e.errcode}"
                    bt.rows().update(state=Recipient.FAILED, reason=reason)
                continue
            record_sent(bt, res.get("msgid", ""), res.get("fail_list") or [])

    def reconcile(self, bt: Batch) -> bool:
        """A batch marked sending whose answer was never recorded: find the message WeCom created
        (get_groupmsg_list_v2 from the call on, same text, same sender, same first recipient) and
        adopt it."""
        api = gateway.contact().external_contact
        known = set(Batch.objects.filter(broadcast__kind=self.b.kind).exclude(msgid="").values_list("msgid", flat=True))
        started = int(bt.send_started_at or time.time())
        start = started - 120
        content = personalise(build_content(self.b), bt)
        text = (content.get("text") or {}).get("content", "")
        cursor = ""
        while True:
            # up to four weeks after the call (WeCom allows a one-month span): tolerant of a WeCom
            # clock ahead of ours, and of a reconcile that runs long after the crash
            page = api.get_groupmsg_list_v2(
                "group" if self.b.kind == Broadcast.GROUP else "single",
                start,
                start + 28 * 86400,
                filter_type=0,
                limit=100,
                cursor=cursor,
            )
            for m in page.get("group_msg_list") or []:
                if m["msgid"] in known or int(m.get("create_time") or 0) < start:
                    continue  # ours, or created before this batch's call (2 min of clock skew allowed)
                if (m.get("text") or {}).get("content", "") != text:
                    continue
                # Recipients WeCom refused at once (over the cap) are not in send_list, so the batch's
                # first target may be missing: match on any of its first targets; a message with no
                # recipient listed at all (every one refused) matches on sender, text and time alone.
                first = api.get_groupmsg_send_result(m["msgid"], bt.userid, limit=100)
                seen = {i.get("chat_id") or i.get("external_userid") for i in first.get("send_list") or []}
                if not seen or seen & set(bt.rows().order_by("id").values_list("target", flat=True)[:200]):
                    record_sent(bt, m["msgid"], [])
                    return True
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return False

    def send_moment(self) -> None:
        """One add_moment_task for the whole visible range (employees + customer tags)."""
        if self.b.jobid:
            return
        content = build_content(self.b, moment=True)
        a = aud.from_json(self.b.audience)
        if moment_tags.is_segment_moment(self.b):
            # the employees holding the tagged relations, visible only to the customers with the tag
            mirror = self.b.audience.get("mirror") or {}
            users = sorted(mirror.get("senders") or [])
            tags = [str(mirror["tag_wecom_id"])] if mirror.get("tag_wecom_id") else []
            if not users or not tags:  # an empty visible range would be everyone's: never send it
                raise BroadcastError(gettext("分群中没有客户打上本次朋友圈的标签，未发表。"))
        else:
            senders = a.sender_ids(aud.scope_from_json(self.b.audience.get("scope")))
            users = sorted(org_selectors.employee_userids(senders).values()) if senders is not None else []
            tags = tag_selectors.wecom_tag_ids(a.tags)
        vr: dict[str, Any] = {}
        if users:
            vr["sender_list"] = {"user_list": users}
        if tags:
            vr["external_contact_list"] = {"tag_list": tags}
        res = gateway.contact().external_contact.add_moment_task(
            text={"content": content["text"]["content"]} if content.get("text") else None,
            attachments=content.get("attachments") or None,
            visible_range=vr or None,
        )
        self._phase("send", jobid=res["jobid"])


def record_sent(bt: Batch, msgid: str, fail_list: list[str]) -> None:
    with transaction.atomic():
        Batch.objects.filter(id=bt.id).update(status=Batch.SENT, msgid=msgid, error="")
        qs = bt.rows().filter(state=Recipient.PLANNED)
        for i in range(0, len(fail_list), 500):
            qs.filter(target__in=fail_list[i : i + 500]).update(state=Recipient.FAILED, reason="not_friend")
        qs.update(state=Recipient.DELIVERED)


# --- content ------------------------------------------------------------------------------------------
# The variables personalise() fills in customer and group mass messages (the composer documents the
# first; the second is its alias). Moments are one add_moment_task for every sender: none is filled.
TEXT_VARIABLES = ("{员工姓名}", "{employee}")


def personalise(content: dict[str, Any], bt: Batch) -> dict[str, Any]:
    """Variables: one add_msg_template per sender, so only sender-level variables exist —
    {员工姓名} / {employee} is the sender's name. (WeCom sends one text to every recipient of a call;
    per-customer variables are impossible in a mass message.)"""
    if not content.get("text"):
        return content
    name = (org_selectors.employee_names([bt.employee_id]).get(bt.employee_id) if bt.employee_id else None) or bt.userid
    text = content["text"]["content"]
    for variable in TEXT_VARIABLES:
        text = text.replace(variable, name)
    return {**content, "text": {"content": text}}


def build_content(b: Broadcast, moment: bool = False) -> dict[str, Any]:
    """The WeCom text + attachments; media is (re-)uploaded when missing or near its 3-day expiry."""
    out: dict[str, Any] = {}
    if b.text:
        out["text"] = {"content": b.text}
    atts: list[dict[str, Any]] = []
    for a in b.attachments or []:
        t = a.get("type")
        if t == "image":
            if a.get("media"):
                mid = media_id(int(a["media"]), moment=moment)
                atts.append({"msgtype": "image", "image": {"media_id": mid}})
            else:
                atts.append({"msgtype": "image", "image": {"pic_url": a.get("pic_url", "")}})
        elif t == "link":
            link = {k: a[k] for k in ("title", "url", "desc", "picurl") if a.get(k)}
            atts.append({"msgtype": "link", "link": link})
        elif t == "miniprogram":
            atts.append(
                {
                    "msgtype": "miniprogram",
                    "miniprogram": {
                        "title": a.get("title", ""),
                        "appid": a.get("appid", ""),
                        "page": a.get("page", ""),
                        "pic_media_id": media_id(int(a["media"])) if a.get("media") else "",
                    },
                }
            )
        elif t in ("video", "file"):
            atts.append({"msgtype": t, t: {"media_id": media_id(int(a["media"]), moment=moment)}})
    if atts:
        out["attachments"] = atts
    return out


def media_id(pk: int, moment: bool = False) -> str:
    m = Media.objects.get(id=pk)
    now = time.time()
    if moment:
        if m.moment_media_id and m.moment_uploaded_at + MEDIA_TTL_S - MEDIA_MARGIN_S > now:
            return m.moment_media_id
        res = gateway.contact().external_contact.upload_attachment(m.kind, 1, (m.name, bytes(m.data)))
        Media.objects.filter(id=pk).update(moment_media_id=res["media_id"], moment_uploaded_at=now)
        return str(res["media_id"])
    if m.media_id and m.uploaded_at + MEDIA_TTL_S - MEDIA_MARGIN_S > now:
        return m.media_id
    res = gateway.contact().media.upload(m.kind, (m.name, bytes(m.data)))
    Media.objects.filter(id=pk).update(media_id=res["media_id"], uploaded_at=now)
    return str(res["media_id"])


def save_media(kind: str, name: str, data: bytes, content_type: str = "") -> Media:
    return Media.objects.create(kind=kind, name=name[:128], data=data, size=len(data), content_type=content_type[:100])


# --- results ---------------------------------------------------------------------------------------------
# get_groupmsg_send_result's status per customer / group (contract part 2 §1.4): 1 sent, 2 not a
# friend, 3 already received its mass messages (the receive cap); 0 once the employee has sent the
# task means the employee left this target out (allow_select): declined, not pending.
STATUS_REASON = {2: "not_friend", 3: "over_quota"}


class BudgetSpent(Exception):
    """A sync run made its share of WeCom calls; the rest continues in the next run."""


class Budget:
    """The WeCom calls one sync run may still make (SIYU_BROADCAST_SYNC_MAX_CALLS)."""

    def __init__(self, calls: int | None = None):
        self.left = int(settings.SIYU_BROADCAST_SYNC_MAX_CALLS if calls is None else calls)
        self.used = 0

    def spend(self) -> None:
        if self.left <= 0:
            raise BudgetSpent
        self.left -= 1
        self.used += 1


def sync(b: Broadcast, budget: Budget | None = None) -> dict[str, Any]:
    """Read per-employee task state and per-recipient results back from WeCom, within ``budget``
    calls; ``{"more": True}`` when the budget ran out before every task was read."""
    budget = budget or Budget()
    out: dict[str, Any] = {"batches": 0, "received": 0}
    try:
        if b.kind == Broadcast.MOMENT:
            sync_moment(b, budget, out)
        else:
            _sync_messages(b, budget, out)
    except BudgetSpent:
        out["more"] = True
    out["calls"] = budget.used
    Broadcast.objects.filter(id=b.id).update(synced_at=timezone.now(), totals={**(b.totals or {}), **totals(b)})
    return out


def _sync_messages(b: Broadcast, budget: Budget, out: dict[str, Any]) -> None:
    api = gateway.contact().external_contact
    for bt in (
        Batch.objects.filter(broadcast=b, status=Batch.SENT, results_synced=False).exclude(msgid="").order_by("id")
    ):
        status, send_time = _task_status(api, bt, budget)
        if status != bt.task_status:
            Batch.objects.filter(id=bt.id).update(task_status=status, task_send_time=send_time)
        if status != 2:
            continue
        out["received"] += _read_results(api, b, bt, budget)
        Batch.objects.filter(id=bt.id).update(results_synced=True)
        out["batches"] += 1


def _task_status(api: gateway.ExternalContactAPI, bt: Batch, budget: Budget) -> tuple[int, int | None]:
    cursor = ""
    while True:
        budget.spend()
        page = api.get_groupmsg_task(bt.msgid, limit=1000, cursor=cursor)
        for t in page.get("task_list") or []:
            if t.get("userid") == bt.userid:
                status = int(t.get("status") or 0)
                # 0 not sent / 2 sent; the official sample shows 1 for sent: tolerated (contract §1.3)
                return (2 if status in (1, 2) else 0), t.get("send_time")
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return 0, None


def _read_results(api: gateway.ExternalContactAPI, b: Broadcast, bt: Batch, budget: Budget) -> int:
    by_status: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    cursor = ""
    while True:
        budget.spend()
        page = api.get_groupmsg_send_result(bt.msgid, bt.userid, limit=1000, cursor=cursor)
        for item in page.get("send_list") or []:
            tgt = item.get("chat_id") if b.kind == Broadcast.GROUP else item.get("external_userid")
            by_status[int(item.get("status") or 0)].append((tgt, item.get("send_time")))
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    kind = "group" if b.kind == Broadcast.GROUP else "single"
    with transaction.atomic():
        qs = bt.rows()
        got = by_status.get(1, [])
        for i in range(0, len(got), 500):
            part = got[i : i + 500]
            at = {t: s for t, s in part}
            for when in set(at.values()):
                qs.filter(target__in=[t for t, s in part if s == when]).update(
                    state=Recipient.RECEIVED, reason="", received_at=when
                )
            Receipt.objects.bulk_create(
                [Receipt(kind=kind, target=t, at=int(s or time.time()), broadcast=b) for t, s in part],
                ignore_conflicts=True,
            )
        for st, reason in STATUS_REASON.items():
            items = [t for t, _ in by_status.get(st, [])]
            for i in range(0, len(items), 500):
                qs.filter(target__in=items[i : i + 500]).update(state=Recipient.FAILED, reason=reason)
        left_out = [t for t, _ in by_status.get(0, [])]
        for i in range(0, len(left_out), 500):
            qs.filter(target__in=left_out[i : i + 500], state=Recipient.DELIVERED).update(
                state=Recipient.DECLINED, reason="employee_unselected"
            )
    return len(got)


def sync_moment(b: Broadcast, budget: Budget | None = None, out: dict[str, Any] | None = None) -> dict[str, Any]:
    budget = budget or Budget()
    out = out if out is not None else {}
    api = gateway.contact().external_contact
    if not b.moment_id:
        if not b.jobid:
            out["job"] = "none"
            return out
        budget.spend()
        res = api.get_moment_task_result(b.jobid)
        if int(res.get("status") or 0) != 3:
            out["job"] = res.get("status")
            return out
        mid = (res.get("result") or {}).get("moment_id", "")
        Broadcast.objects.filter(id=b.id).update(moment_id=mid)
        b.moment_id = mid
    emp_ids = org_selectors.employee_ids()
    cursor = ""
    tasks: list[dict[str, Any]] = []
    while True:
        budget.spend()
        page = api.get_moment_task(b.moment_id, cursor=cursor, limit=1000)
        tasks += page.get("task_list") or []
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    out["tasks"] = len(tasks)
    out.setdefault("received", 0)
    for t in tasks:
        status = 2 if int(t.get("publish_status") or 0) == 1 else 0
        bt, _ = Batch.objects.get_or_create(
            broadcast=b,
            userid=t["userid"],
            seq=0,
            defaults={"employee_id": emp_ids.get(t["userid"]), "status": Batch.SENT, "msgid": b.moment_id},
        )
        if bt.results_synced:
            continue
        Batch.objects.filter(id=bt.id).update(task_status=status)
        with transaction.atomic():
            Recipient.objects.filter(broadcast=b, employee_id=bt.employee_id, state=Recipient.PLANNED).update(
                state=Recipient.DELIVERED, batch=bt
            )
        if status != 2:
            continue
        out["received"] += _moment_results(api, b, bt, budget)
    return out


def _moment_results(api: gateway.ExternalContactAPI, b: Broadcast, bt: Batch, budget: Budget) -> int:
    """One published employee task: who can see the Moment (get_moment_send_result)."""
    seen: list[str] = []
    cursor = ""
    while True:
        budget.spend()
        page = api.get_moment_send_result(b.moment_id, bt.userid, cursor=cursor, limit=5000)
        seen += [c["external_userid"] for c in page.get("customer_list") or []]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    now = int(time.time())
    with transaction.atomic():
        qs = Recipient.objects.filter(broadcast=b, employee_id=bt.employee_id)
        for i in range(0, len(seen), 500):
            qs.filter(target__in=seen[i : i + 500]).update(state=Recipient.RECEIVED, reason="", received_at=now)
        Receipt.objects.bulk_create(
            [Receipt(kind="moment", target=x, at=now, broadcast=b) for x in seen], ignore_conflicts=True
        )
        # published, yet not visible: over the Moments cap or no longer a friend (WeCom does not say which)
        qs.filter(state=Recipient.DELIVERED).update(state=Recipient.FAILED, reason="not_visible")
        Batch.objects.filter(id=bt.id).update(results_synced=True)
    return len(seen)


# --- the live result schedule ---------------------------------------------------------------------------
def next_sync_at(b: Broadcast, now: float) -> float | None:
    """When the results of a sent ``b`` are read next (unix time), None when no more.

    Every SIYU_BROADCAST_SYNC_FAST_S (5 min) during the first day after sending, when most employees
    send; then every SIYU_BROADCAST_SYNC_SLOW_S (1 h) until SIYU_BROADCAST_SYNC_FOR_S (3 days) after
    sending, with one last read at that end. The contract (wecom-api part 2 §1) names no time after
    which an employee can no longer send an unsent task, and the official doc (92135) is silent too:
    3 days follows what WeCom's own 群发助手 shows as the active period of a corp mass message,
    configurable. Each broadcast is offset by up to a tenth of the interval (by its id), so tasks
    sent together do not all call WeCom in the same second (the API quota is per corp)."""
    if b.sent_at is None:
        return None
    sent = b.sent_at.timestamp()
    end = sent + settings.SIYU_BROADCAST_SYNC_FOR_S
    if now >= end:
        return None
    fast = now - sent < FAST_FOR_S
    interval = settings.SIYU_BROADCAST_SYNC_FAST_S if fast else settings.SIYU_BROADCAST_SYNC_SLOW_S
    offset = (b.id * 7919) % max(1, int(interval) // 10)
    return min(now + interval + offset, end)


def results_pending(b: Broadcast) -> bool:
    """Whether WeCom may still change ``b``'s results: an employee task not read to its end."""
    if b.kind == Broadcast.MOMENT and not b.moment_id:
        return True
    return Batch.objects.filter(broadcast=b, status=Batch.SENT, results_synced=False).exists()


def schedule_next_sync(b: Broadcast, *, more: bool = False, backoff: bool = False) -> float | None:
    """Schedule the next result sync of a sent broadcast (one pending timer per broadcast), or
    mark its results final. ``more``: the last run's call budget ran out (continue in a minute);
    ``backoff``: WeCom answered a frequency limit (wait QUOTA_BACKOFF_S)."""
    b.refresh_from_db()
    if b.status != Broadcast.SENT or not b.sent_at:
        return None
    now = time.time()
    at: float | None
    if backoff:
        at = now + QUOTA_BACKOFF_S
    elif more:
        at = now + FIRST_SYNC_S
    elif results_pending(b):
        at = next_sync_at(b, now)
    else:
        at = None
    if at is None:
        finalise(b)
        return None
    key = sync_timer_key(b.id)
    if timers.schedule(SYNC_TIMER, at, {"id": b.id}, key=key) is None:
        timers.reschedule(key, at)
    return at


def finalise(b: Broadcast) -> None:
    """No more syncs: targets of employees who never sent are marked declined ('the task ended
    without the employee sending'), and the totals say final (the pages stop refreshing)."""
    with transaction.atomic():
        Recipient.objects.filter(broadcast=b, state=Recipient.DELIVERED).update(
            state=Recipient.DECLINED, reason="task_ended"
        )
        Broadcast.objects.filter(id=b.id).update(totals={**totals(b), "final": True})


def sync_and_reschedule(b: Broadcast) -> dict[str, Any]:
    """The sync timer's work: read the results, then schedule the next read (or finish)."""
    backoff = False
    try:
        out = sync(b)
    except WeComAPIError as e:
        backoff = e.errcode is None or int(e.errcode) in QUOTA_CODES
        logger.warning("broadcast %s: result sync failed: %s", b.id, gateway.redact(e))
        out = {"error": e.errcode}
    out["next"] = schedule_next_sync(b, more=bool(out.get("more")), backoff=backoff)
    return out


def remind(b: Broadcast) -> int:
    """remind_groupmsg_send for every message an employee has not sent yet (≤ 3 per 24 h each)."""
    if b.kind == Broadcast.MOMENT:
        raise BroadcastError("Moments have no reminder API")
    n = 0
    api = gateway.contact().external_contact
    for msgid in (
        Batch.objects.filter(broadcast=b, status=Batch.SENT, task_status=0)
        .exclude(msgid="")
        .values_list("msgid", flat=True)
        .distinct()
    ):
        api.remind_groupmsg_send(msgid)
        n += 1
    return n


def cancel(b: Broadcast) -> Broadcast:
    """Stop: a draft or scheduled broadcast never starts; a running one stops creating messages;
    messages already created are cancelled (cancel_groupmsg_send / cancel_moment_task)."""
    Broadcast.objects.filter(
        id=b.id,
        status__in=(Broadcast.DRAFT, Broadcast.SCHEDULED, Broadcast.PLANNING, Broadcast.SENDING, Broadcast.SENT),
    ).update(status=Broadcast.CANCELLED)
    api = gateway.contact().external_contact
    if b.kind == Broadcast.MOMENT:
        b.refresh_from_db()
        if b.moment_id:
            api.cancel_moment_task(b.moment_id)
        elif not b.jobid and b.lease_until < time.time():  # no executor at work: it never reached WeCom
            moment_tags.drop_unsent_tag(b)
    else:
        for msgid in (
            Batch.objects.filter(broadcast=b, status=Batch.SENT)
            .exclude(msgid="")
            .values_list("msgid", flat=True)
            .distinct()
        ):
            api.cancel_groupmsg_send(msgid)
    b.refresh_from_db()
    return b


def totals(b: Broadcast) -> dict[str, Any]:
    """The funnel: planned → delivered to employees → confirmed → received, plus skips/failures,
    the targets still waiting for their employee (pending) and those an employee did not send
    (declined), and the failures by WeCom's reason."""
    counts = dict(
        Recipient.objects.filter(broadcast=b).values_list("state").annotate(n=Count("id")).values_list("state", "n")
    )
    total = sum(counts.values())
    skipped = counts.get(Recipient.SKIPPED, 0)
    planned = total - skipped
    failed_calls = sum(Batch.objects.filter(broadcast=b, status=Batch.FAILED).values_list("size", flat=True))
    delivered = planned - counts.get(Recipient.PLANNED, 0) - failed_calls
    if b.kind == Broadcast.MOMENT:
        confirmed = Recipient.objects.filter(broadcast=b, batch__task_status=2).count()
    else:
        confirmed = sum(Batch.objects.filter(broadcast=b, task_status=2).values_list("size", flat=True))
    return {
        "total": total,
        "skipped": skipped,
        "planned": planned,
        "delivered": delivered,
        "confirmed": confirmed,
        "received": counts.get(Recipient.RECEIVED, 0),
        "failed": counts.get(Recipient.FAILED, 0),
        "pending": counts.get(Recipient.DELIVERED, 0),
        "declined": counts.get(Recipient.DECLINED, 0),
        "failed_by_reason": dict(
            Recipient.objects.filter(broadcast=b, state=Recipient.FAILED)
            .values_list("reason")
            .annotate(n=Count("id"))
            .values_list("reason", "n")
        ),
        "employees": Batch.objects.filter(broadcast=b).values("userid").distinct().count(),
        "employees_confirmed": Batch.objects.filter(broadcast=b, task_status=2).values("userid").distinct().count(),
    }
