"""The full sync: the product's copy of the corp rebuilt from WeCom, resumable after a crash.

Phases, recorded on a ``SyncRun`` row:

1. ``org`` — department/list, user/list (members), get_follow_user_list.
2. ``tags`` — get_corp_tag_list; tags and groups WeCom no longer has are marked deleted.
3. ``customers`` — batch/get_by_user: the customer-contact members split into chains of at most
   100 userids, each chain paged by its cursor. One answer gives customers, relations and corp
   tag ids, so no per-customer ``get`` is needed.
4. ``groups`` — groupchat/list (cursor paging), then groupchat/get per chat.
5. ``reconcile`` — relations of the synced members that WeCom did not list are gone; active
   groups of members still in the corp that WeCom did not list were dismissed.

Reads run in a thread pool ahead of the writes (the chains are independent). The pages fetched so
far (a few at most) are written in one short transaction together with their chains' new cursors
and the run's counts, so a run that dies resumes at the first page it had not committed, and
re-writing a page changes nothing. WeCom is never called inside a transaction.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from siyu.customers import selectors as customer_selectors
from siyu.customers import services
from siyu.groups import services as group_services
from siyu.org import selectors as org_selectors
from siyu.org import services as org_services
from siyu.sync.models import SyncRun
from siyu.wecom import gateway

logger = logging.getLogger("siyu.sync")

# A run owned by another host that has not written for this long is considered dead.
STALE_S = 300
MAX_USERS_PER_CALL = 100  # batch/get_by_user userid_list (doc 92994)
MAX_PAGE_LIMIT = 100  # batch/get_by_user limit (doc 92994)
# Errors on a chain that mean one of its userids is no longer a customer-contact member
# (60111 not found / left, 84074 no customer-contact function, 60011 outside visibility).
USER_GONE = {60111, 84074, 60011}
PageHook = Callable[[SyncRun, str], None]
WeComRow = dict[str, Any]  # a row of WeCom's JSON (a relation, a tag group, a group's details)


class SyncBusy(RuntimeError):
    """Another process is running a full sync."""


class NothingToResume(RuntimeError):
    """``--resume`` was asked for but no interrupted run exists."""


class SyncLost(RuntimeError):
    """Another process took the run over (it thought this one dead)."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(run: SyncRun) -> bool:
    """Is another process still running ``run``? On this host its pid says so; from another host
    only its heartbeat can."""
    if not run.owner or run.owner == _owner():
        return False
    host, _, pid = run.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return run.heartbeat_at is not None and timezone.now() - run.heartbeat_at < timedelta(seconds=STALE_S)


def claim(restart: bool = False, resume_only: bool = False) -> SyncRun:
    """The run to work on: the interrupted one (resumed), or a new one.

    ``restart`` abandons an interrupted run and starts afresh; ``resume_only`` refuses to start a
    new run. A run whose owner is alive raises ``SyncBusy``.
    """
    now = timezone.now()
    with transaction.atomic():
        run = SyncRun.objects.filter(status__in=[SyncRun.RUNNING, SyncRun.FAILED]).order_by("-id").first()
        if run is not None and run.status == SyncRun.RUNNING and _owner_alive(run):
            raise SyncBusy(f"sync run {run.id} is running in {run.owner}")
        if run is not None and restart:
            SyncRun.objects.filter(id=run.id).update(status=SyncRun.ABANDONED, finished_at=now, owner="")
            run = None
        if run is not None:
            run.status = SyncRun.RUNNING
            run.owner = _owner()
            run.heartbeat_at = now
            run.resumes += 1
            run.error = ""
            run.save(update_fields=["status", "owner", "heartbeat_at", "resumes", "error"])
            return run
        if resume_only:
            raise NothingToResume("no interrupted sync run to resume")
        return SyncRun.objects.create(started_at=now, heartbeat_at=now, owner=_owner(), phase=SyncRun.PHASES[0])


def chains_for(userids: list[str], workers: int) -> list[list[str]]:
    """Split the members into chains for batch/get_by_user: at least one per worker (they page in
    parallel), at most 100 userids each."""
    if not userids:
        return []
    n = max(min(workers, len(userids)), -(-len(userids) // MAX_USERS_PER_CALL))
    return [userids[i::n] for i in range(n)]


@dataclass
class _Page:
    chain: int
    rows: list[WeComRow] = field(default_factory=list)
    next_cursor: str = ""
    tag_groups: list[WeComRow] = field(default_factory=list)
    userids: list[str] | None = None  # the chain's members changed: restart it with these
    error: BaseException | None = None


class FullSync:
    """Runs (or resumes) one ``SyncRun`` to the end.

    ``workers`` reader threads; ``page_limit`` rows per batch/get_by_user page; up to
    ``pages_per_write`` fetched pages and ``group_batch`` groups are written per transaction.
    ``on_page(run, phase)`` is called after every commit (tests use it to interrupt a run);
    ``progress(run)`` to report."""

    def __init__(
        self,
        run: SyncRun,
        *,
        workers: int = 8,
        page_limit: int = MAX_PAGE_LIMIT,
        group_batch: int = 50,
        pages_per_write: int = 4,
        on_page: PageHook | None = None,
        progress: Callable[[SyncRun], None] | None = None,
        client: gateway.WeComClient | None = None,
    ) -> None:
        self.run = run
        self.workers = max(1, workers)
        self.page_limit = max(1, min(page_limit, MAX_PAGE_LIMIT))
        self.group_batch = max(1, group_batch)
        self.pages_per_write = max(1, pages_per_write)
        self.on_page = on_page
        self.progress = progress
        self.client = client
        self.owner = run.owner or _owner()

    # --- bookkeeping -----------------------------------------------------------------------------
    def _save(self, **fields: Any) -> None:
        """Persist the run (inside the page's transaction); fails if another process took it."""
        run = self.run
        for k, v in fields.items():
            setattr(run, k, v)
        run.heartbeat_at = timezone.now()
        n = SyncRun.objects.filter(id=run.id, owner=self.owner, status=SyncRun.RUNNING).update(
            phase=run.phase, state=run.state, counts=run.counts, totals=run.totals, heartbeat_at=run.heartbeat_at
        )
        if n != 1:
            raise SyncLost(f"sync run {run.id} was taken over by another process")

    def _count(self, **deltas: int) -> None:
        for k, v in deltas.items():
            self.run.counts[k] = self.run.counts.get(k, 0) + int(v)

    def _committed(self, phase: str) -> None:
        if self.progress:
            self.progress(self.run)
        if self.on_page:
            self.on_page(self.run, phase)

    def _wecom(self) -> gateway.WeComClient:
        """The client (``execute`` sets it before any read)."""
        if self.client is None:
            self.client = gateway.contact()
        return self.client

    # --- the run ---------------------------------------------------------------------------------
    def execute(self) -> SyncRun:
        if connection.in_atomic_block:
            raise RuntimeError("the full sync calls WeCom: run it outside a transaction")
        self.client = self.client or gateway.contact()
        steps = {
            "org": self._org,
            "tags": self._tags,
            "customers": self._customers,
            "groups": self._groups,
            "reconcile": self._reconcile,
        }
        try:
            while self.run.phase != "done":
                logger.info("sync run %s: phase %s", self.run.id, self.run.phase)
                if self.progress:
                    self.progress(self.run)
                steps[self.run.phase]()
        except BaseException as exc:
            detail = gateway.error_text(exc, 4000)
            if not isinstance(exc, SyncLost):
                SyncRun.objects.filter(id=self.run.id, owner=self.owner).update(
                    status=SyncRun.FAILED, owner="", error=detail, heartbeat_at=timezone.now()
                )
            self.run.status, self.run.error = SyncRun.FAILED, detail
            logger.warning("sync run %s stopped in phase %s: %s", self.run.id, self.run.phase, detail)
            raise
        now = timezone.now()
        SyncRun.objects.filter(id=self.run.id).update(status=SyncRun.DONE, finished_at=now, owner="", heartbeat_at=now)
        self.run.status, self.run.finished_at = SyncRun.DONE, now
        if self.progress:
            self.progress(self.run)
        logger.info("sync run %s done: %s", self.run.id, self.run.counts)
        return self.run

    def _next_phase(self) -> str:
        return SyncRun.PHASES[SyncRun.PHASES.index(self.run.phase) + 1]

    # --- 1. org ----------------------------------------------------------------------------------
    def _org(self) -> None:
        departments = org_services.fetch_departments(self.client)
        users = org_services.fetch_users(departments, self.client)
        follow = org_services.fetch_follow_userids(self.client)
        with transaction.atomic():
            d = org_services.apply_departments(departments, full=True)
            u = org_services.apply_users(users, follow_userids=follow, full=True)
            self.run.state["follow_userids"] = sorted(set(follow))
            self.run.counts.update(departments=d["departments"], employees=u["employees"], employees_left=u["left"])
            self._save(phase=self._next_phase())

    # --- 2. tags ---------------------------------------------------------------------------------
    def _tags(self) -> None:
        groups = services.fetch_tag_groups(client=self.client)
        with transaction.atomic():
            t = services.apply_tag_groups(groups, full=True)
            self.run.counts.update(tag_groups=t["tag_groups"], tags=t["tags"], tags_deleted=t["tags_deleted"])
            self._save(phase=self._next_phase())

    # --- 3. customers ----------------------------------------------------------------------------
    def _estimate_relations(self, userids: list[str]) -> int | None:
        """How many relations the chains will bring: externalcontact/list per member (one call
        each, in parallel). Only for progress; None if WeCom refuses."""

        def count(userid: str) -> int:
            try:
                return len(self._wecom().external_contact.list(userid).get("external_userid") or [])
            except gateway.WeComAPIError as e:
                if e.errcode == 84061:  # a member without customers (part 1 §2.2)
                    return 0
                raise
            finally:
                connection.close()

        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="sync-estimate") as pool:
                return sum(pool.map(count, userids))
        except gateway.WeComAPIError as e:
            logger.info("no relation estimate: %s", e)
            return None

    def _customers(self) -> None:
        st = self.run.state.setdefault("customers", {})
        if "chains" not in st:
            st["chains"] = [
                {"userids": c, "cursor": "", "done": False}
                for c in chains_for(self.run.state.get("follow_userids", []), self.workers)
            ]
            estimate = self._estimate_relations(self.run.state.get("follow_userids", []))
            if estimate is not None:
                self.run.totals["relations"] = estimate
            with transaction.atomic():
                self._save()
        chains = st["chains"]
        pending = [i for i, c in enumerate(chains) if not c["done"]]
        if pending:
            self._run_chains(chains, pending)
        with transaction.atomic():
            self.run.counts["customers"] = customer_selectors.customer_total()
            self._save(phase=self._next_phase())

    def _fetch_chain(  # noqa: C901 - one paging loop with its stop, retry and tag-resolution cases side by side
        self,
        i: int,
        chain: dict[str, Any],
        out: queue.Queue[_Page],
        stop: threading.Event,
        tags: dict[str, Any],
        unresolvable: set[str],
    ) -> None:
        """One chain's pages, in order, into ``out`` (runs in a pool thread)."""

        def put(page: _Page) -> None:
            while not stop.is_set():
                try:
                    out.put(page, timeout=0.2)
                    return
                except queue.Full:
                    continue

        userids = list(chain["userids"])
        cursor = chain["cursor"]
        resumed = bool(cursor)
        try:
            while not stop.is_set():
                try:
                    res = self._wecom().external_contact.batch_get_by_users(userids, cursor, self.page_limit)
                except gateway.WeComAPIError as e:
                    if resumed:
                        # the stored cursor is no longer accepted: page the chain again from the start
                        logger.info("chain %s: cursor refused (%s), restarting the chain", i, e)
                        cursor, resumed = "", False
                        continue
                    if e.errcode in USER_GONE:
                        follow = set(org_services.fetch_follow_userids(self.client))
                        still = [u for u in userids if u in follow]
                        if still != userids:
                            logger.info("chain %s: members left meanwhile, restarting with %d", i, len(still))
                            put(_Page(i, userids=still))
                            if not still:
                                return
                            userids, cursor = still, ""
                            continue
                    raise
                resumed = False
                rows = res.get("external_contact_list") or []
                for row in rows:
                    info = row.setdefault("follow_info", {})
                    if not info.get("userid"):
                        if len(userids) != 1:
                            raise gateway.WeComAPIError(
                                None, "follow_info without userid", "externalcontact/batch/get_by_user"
                            )
                        info["userid"] = userids[0]
                # tags created since the tags phase: read them before the page is written
                unknown = sorted(t for t in services.row_tag_ids(rows) if t not in tags and t not in unresolvable)
                tag_groups = services.fetch_tag_groups(tag_ids=unknown, client=self.client) if unknown else []
                found = {t["id"] for g in tag_groups for t in g.get("tag") or []}
                unresolvable.update(t for t in unknown if t not in found)
                cursor = res.get("next_cursor") or ""
                put(_Page(i, rows=rows, next_cursor=cursor, tag_groups=tag_groups))
                if not cursor:
                    return
        except BaseException as exc:  # noqa: BLE001 — handed to the writing thread, which raises it
            put(_Page(i, error=exc))
        finally:
            connection.close()

    def _run_chains(self, chains: list[dict[str, Any]], pending: list[int]) -> None:
        employees = org_selectors.employee_ids()
        tags = services.known_tags()
        out: queue.Queue[_Page] = queue.Queue(maxsize=self.workers * 4)
        stop = threading.Event()
        unresolvable: set[str] = set()
        left = set(pending)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sync-customers")
        try:
            for i in pending:
                pool.submit(self._fetch_chain, i, dict(chains[i]), out, stop, tags, unresolvable)
            while left:
                # the pages already fetched, written together (fewer, larger statements)
                batch: list[_Page] = [out.get()]
                while len(batch) < self.pages_per_write:
                    try:
                        batch.append(out.get_nowait())
                    except queue.Empty:
                        break
                for page in batch:
                    if page.error is not None:
                        raise page.error
                pages = [p for p in batch if p.userids is None]
                tag_groups = [g for p in pages for g in p.tag_groups]
                with transaction.atomic():
                    if tag_groups:
                        services.apply_tag_groups(tag_groups)
                        tags.update(services.known_tags(t["id"] for g in tag_groups for t in g.get("tag") or []))
                    stats = services.write_follow_rows(
                        [row for p in pages for row in p.rows], source="sync", employees=employees, tags=tags
                    )
                    for page in batch:  # in the order each chain produced them
                        if page.userids is not None:
                            chains[page.chain].update(userids=page.userids, cursor="", done=not page.userids)
                        else:
                            chains[page.chain].update(cursor=page.next_cursor, done=not page.next_cursor)
                    self._count(
                        pages=len(pages),
                        relations=stats["relations"],
                        new_relations=stats["new_relations"],
                        events=stats["events"],
                    )
                    self._save()
                left.difference_update(p.chain for p in batch if chains[p.chain]["done"])
                self._committed("customers")
        finally:
            stop.set()
            while True:  # unblock producers waiting on a full queue
                try:
                    out.get_nowait()
                except queue.Empty:
                    break
            pool.shutdown(wait=True, cancel_futures=True)

    # --- 4. groups -------------------------------------------------------------------------------
    def _groups(self) -> None:
        gs = self.run.state.setdefault("groups", {})
        if not gs.get("listed"):
            listed = group_services.fetch_group_ids(client=self.client)
            gs.update(listed=True, ids=[c for c, _ in listed], owner_status={c: s for c, s in listed}, done=0)
            self.run.totals["groups"] = len(listed)
            with transaction.atomic():
                self._save()
        ids: list[str] = gs["ids"]
        owner_status: dict[str, int] = gs["owner_status"]
        employees = org_selectors.employee_ids()

        def fetch(chat_id: str) -> tuple[str, WeComRow | None]:
            try:
                return chat_id, group_services.fetch_group(chat_id, self.client)
            finally:
                connection.close()

        window: deque[Future[tuple[str, WeComRow | None]]] = deque()
        todo = iter(ids[gs["done"] :])
        ahead = self.workers * 4 + self.group_batch
        with ThreadPoolExecutor(self.workers, thread_name_prefix="sync-groups") as pool:
            try:
                for chat_id in todo:
                    window.append(pool.submit(fetch, chat_id))
                    if len(window) >= ahead:
                        break
                while window:
                    batch: list[tuple[str, WeComRow | None]] = []
                    while window and len(batch) < self.group_batch:
                        batch.append(window.popleft().result())
                        nxt = next(todo, None)
                        if nxt is not None:
                            window.append(pool.submit(fetch, nxt))
                    details = [d for _, d in batch if d is not None]
                    gone = [c for c, d in batch if d is None]
                    with transaction.atomic():
                        stats = group_services.write_groups(
                            details, source="sync", owner_status=owner_status, employees=employees
                        )
                        for chat_id in gone:
                            group_services.dismiss_group(chat_id, source="sync")
                        gs["done"] += len(batch)
                        self._count(
                            groups=stats["groups"],
                            group_members=stats["members"],
                            group_joins=stats["joined"],
                            group_leaves=stats["left"],
                        )
                        self._save()
                    self._committed("groups")
            finally:
                for f in window:
                    f.cancel()
        with transaction.atomic():
            self._save(phase=self._next_phase())

    # --- 5. reconcile ----------------------------------------------------------------------------
    def _reconcile(self) -> None:
        # the members whose customers were listed to the end (a member who left meanwhile keeps
        # their relations: they await a resigned transfer)
        synced = {u for c in self.run.state.get("customers", {}).get("chains", []) for u in c["userids"]}
        relations = services.reconcile_relations(
            org_selectors.employee_ids(synced).values(), before=self.run.started_at
        )
        # groupchat/list leaves out only the groups of members who left
        owners = org_selectors.active_employees().values_list("id", flat=True)
        groups = group_services.reconcile_groups(self.run.state.get("groups", {}).get("ids", []), owners)
        with transaction.atomic():
            self.run.counts.update(reconciled_relations=relations, reconciled_groups=groups)
            self._save(phase=self._next_phase())


def run_full_sync(restart: bool = False, resume_only: bool = False, **options: Any) -> SyncRun:
    """Claim (or resume) a run and execute it: the entry point of ``siyu sync`` and the task."""
    return FullSync(claim(restart=restart, resume_only=resume_only), **options).execute()
