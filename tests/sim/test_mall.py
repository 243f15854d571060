"""The brand's mall, POS and membership in the emulator (``siyu.wecom_sim.mall``, control actions
``mall/*``): generated deterministically over the corp's people, and pushed like a real POS
integration to a stand-in for the product's ingestion API (``POST /api/v1/cdp/{kind}``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.sim.helpers import own_sim, wait_for
from tests.simproc import SimProcess, free_port

sim = own_sim(customers=800, seed=5, demo=True)

TOKEN = "siyu_test-mall-token-0123456789"
ID = {"members": "member_no", "orders": "order_no", "events": "event_id"}


class Ingest:
    """A stand-in for the product's REST ingestion API: records every call, answers like
    docs/cdp.md. ``fail_first`` calls answer HTTP 500; ``refuse(kind, row)`` names rows to refuse."""

    def __init__(self, fail_first: int = 0, refuse=None):
        self.calls: list[tuple[str, str, list[dict]]] = []  # (kind, authorization, rows) accepted
        self.attempts = 0
        self.duplicates = 0
        self.fail_first = fail_first
        self.refuse = refuse or (lambda kind, row: False)
        self.rows: dict[str, dict[str, dict]] = defaultdict(dict)  # kind → id → last row
        self.lock = threading.Lock()
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with ingest.lock:
                    ingest.attempts += 1
                    failing = ingest.attempts <= ingest.fail_first
                if failing:
                    return self._answer(500, {"detail": "busy"})
                kind = self.path.rstrip("/").rsplit("/", 1)[-1]
                if not self.path.startswith("/api/v1/cdp/") or kind not in ID:
                    return self._answer(404, {"detail": "not found"})
                body = json.loads(raw)
                assert body["source"] == "mall"
                rows = body["rows"]
                errors = []
                with ingest.lock:
                    ingest.calls.append((kind, self.headers.get("Authorization", ""), rows))
                    ids = [r[ID[kind]] for r in rows]
                    ingest.duplicates += len(ids) - len(set(ids))  # the product refuses a row sent twice in a call
                    for i, row in enumerate(rows):
                        if ingest.refuse(kind, row):
                            errors.append({"row": i, "id": row[ID[kind]], "errors": {"amount": "refused"}})
                        else:
                            ingest.rows[kind][row[ID[kind]]] = row
                ok = len(rows) - len(errors)
                self._answer(
                    200, {"created": ok, "updated": 0, "unchanged": 0, "failed": len(errors), "errors": errors}
                )

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingest_for(sim):
    made = []

    def make(**options) -> Ingest:
        rx = Ingest(**options)
        made.append(rx)
        sim.control("mall/connect", {"url": rx.url, "token": TOKEN})
        return rx

    yield make
    sim.control("mall/live", {"on": False})
    sim.control("mall/connect", {"url": ""})
    for rx in made:
        rx.close()


def drained(sim, timeout: float = 60) -> dict:
    return wait_for(lambda: (s := sim.control("mall/status"))["outbox"]["pending"] == 0 and s, timeout, 0.2)


@pytest.fixture(scope="module")
def pushed(sim):
    """The whole history pushed once to a well-behaved receiver: (ingest, mall/history's answer)."""
    sim.control("mall/seed")
    rx = Ingest()
    sim.control("mall/connect", {"url": rx.url, "token": TOKEN})
    answer = sim.control("mall/history", {"months": 12})
    drained(sim)
    sim.control("mall/connect", {"url": ""})
    rx.close()
    return rx, answer


def wecom_customers(sim) -> dict[str, str]:
    """external_userid → unionid of every customer, as WeCom reports them."""
    users = sim.get("externalcontact/get_follow_user_list")["follow_user"]
    out: dict[str, str] = {}
    for i in range(0, len(users), 100):
        cursor = ""
        while True:
            page = sim.call(
                "externalcontact/batch/get_by_user", {"userid_list": users[i : i + 100], "cursor": cursor, "limit": 100}
            )
            for c in page["external_contact_list"]:
                out[c["external_contact"]["external_userid"]] = c["external_contact"].get("unionid", "")
            cursor = page.get("next_cursor", "")
            if not cursor:
                break
    return out


def digits(phone: str) -> str:
    d = "".join(ch for ch in phone if ch.isdigit())
    return d[2:] if len(d) == 13 and d.startswith("86") else d


def at(row: dict, field: str) -> dt.datetime:
    return dt.datetime.fromisoformat(row[field])


# --- generation ----------------------------------------------------------------------------------------
def test_generation_is_deterministic_and_fast(sim):
    first = sim.control("mall/seed")["generated"]
    again = sim.control("mall/seed")["generated"]
    assert first["digest"] == again["digest"]
    other = sim.control("mall/seed", {"seed": 99})["generated"]
    assert other["digest"] != first["digest"]
    assert sim.control("mall/seed")["generated"]["digest"] == first["digest"]
    assert first["seconds"] < 20, first  # a few seconds for a demo corp on an idle machine
    sample = sim.control("mall/sample", {"n": 3})
    stores = sample["stores"]
    assert len(stores) == 6 and all(
        s["name"].endswith("店") and s["code"] == f"S{s['department_id']:03d}" for s in stores
    )
    assert sample["products"] and all(
        p["sku"].startswith("JL-") and Decimal(p["price"]) > 0 for p in sample["products"]
    )


def test_another_emulator_with_the_same_seed_makes_the_same_mall(sim):
    mine = sim.control("mall/seed")["generated"]
    with SimProcess(customers=800, seed=5, demo=True) as other:
        theirs = other.control("mall/seed")["generated"]
        sample = other.control("mall/sample", {"n": 50})
    day = 86400
    if (mine["anchor"] + 8 * 3600) // day != (theirs["anchor"] + 8 * 3600) // day:
        pytest.skip("the two worlds were seeded on either side of midnight (Asia/Shanghai)")
    assert theirs["digest"] == mine["digest"]
    assert sim.control("mall/sample", {"n": 50}) == sample  # to the second


def test_history_rows_follow_the_ingestion_contract(pushed):
    rx, answer = pushed
    got = {kind: len(rx.rows[kind]) for kind in ID}
    assert got == {"members": answer["members"], "orders": answer["orders"], "events": answer["events"]}
    assert answer["orders"] > 2000 and answer["events"] > answer["orders"] and answer["members"] > 500
    # batches of at most 1,000 rows, with the token, members before orders before events
    assert all(auth == f"Bearer {TOKEN}" for _k, auth, _r in rx.calls)
    assert all(0 < len(rows) <= 1000 for _k, _a, rows in rx.calls)
    kinds = [k for k, _a, _r in rx.calls]
    assert kinds == sorted(kinds, key=["members", "orders", "events"].index)
    order = next(iter(rx.rows["orders"].values()))
    assert {"order_no", "paid_at", "amount", "status", "items", "channel"} <= set(order)
    for o in rx.rows["orders"].values():
        assert set(o) & {"unionid", "phone", "member_no", "openid"}
        gross = sum(Decimal(i["price"]) * i["quantity"] for i in o["items"])
        assert Decimal(o["amount"]) + Decimal(o["discount"]) == gross
        assert Decimal(o["refunded_amount"]) <= Decimal(o["amount"])
        assert o["channel"] in ("门店", "小程序", "商城")
        if o["channel"] == "门店":
            assert o["store_code"] and o["guide_userid"]
    types = Counter(e["type"] for e in rx.rows["events"].values())
    assert set(types) == {
        "browse_product",
        "add_to_cart",
        "coupon_claimed",
        "coupon_redeemed",
        "link_clicked",
        "store_visit",
        "points_change",
    }


def test_guides_are_the_stores_employees(sim, pushed):
    rx, _ = pushed
    stores = {s["code"]: s["department_id"] for s in sim.control("mall/sample")["stores"]}
    users = {u["userid"]: u for u in sim.get("user/list", department_id=1, fetch_child=1)["userlist"]}
    store_orders = [o for o in rx.rows["orders"].values() if o["channel"] == "门店"]
    for o in store_orders:
        assert stores[o["store_code"]] in users[o["guide_userid"]]["department"], o


def test_spend_is_pareto_like_and_seasonal(pushed):
    rx, _ = pushed
    spend: Counter[str] = Counter()
    months: Counter[str] = Counter()
    for o in rx.rows["orders"].values():
        who = o.get("member_no") or o.get("unionid") or o.get("phone")
        spend[who] += Decimal(o["amount"]) - Decimal(o["refunded_amount"])
        months[o["paid_at"][:7]] += 1
    values = sorted(spend.values(), reverse=True)
    top = sum(values[: len(values) // 5]) / sum(values)
    assert top > 0.6, f"the top 20 % of buyers spend {top:.0%}"
    counts = Counter(Counter(o.get("member_no") or o.get("unionid") for o in rx.rows["orders"].values()).values())
    assert counts[1] > counts[4] > 0 and max(counts) >= 10  # most buy once or twice, a few many times
    full = sorted(months)[1:-1]  # whole months only
    mean = sum(months[m] for m in full) / len(full)
    nov = next(m for m in full if m.endswith("-11"))
    assert months[nov] > 1.5 * mean, (nov, months)
    feb = next(m for m in full if m.endswith("-02"))
    assert months[feb] > mean, months
    # coupons around the seasons, named after them
    coupons = Counter(e["props"]["name"][:2] for e in rx.rows["events"].values() if e["type"] == "coupon_redeemed")
    assert coupons["双1"] > 0 and sum(coupons.values()) > 50


def test_refunds_and_part_refunds(pushed):
    rx, _ = pushed
    orders = list(rx.rows["orders"].values())
    status = Counter(o["status"] for o in orders)
    assert 0.01 < status["refunded"] / len(orders) < 0.08, status
    assert 0.01 < status["part_refunded"] / len(orders) < 0.08, status
    for o in orders:
        if o["status"] == "refunded":
            assert o["refunded_amount"] == o["amount"]
        elif o["status"] == "part_refunded":
            assert Decimal("0") < Decimal(o["refunded_amount"]) < Decimal(o["amount"])
        else:
            assert Decimal(o["refunded_amount"]) == 0
    refunds = [e for e in rx.rows["events"].values() if e["type"] == "points_change" and e["props"]["delta"] < 0]
    assert refunds and all(e["props"]["reason"] == "退款" for e in refunds)


def test_identity_overlap_as_designed(sim, pushed):
    rx, _ = pushed
    wecom = wecom_customers(sim)
    unionids = {u for u in wecom.values() if u}
    members = list(rx.rows["members"].values())
    with_wecom = [m for m in members if m.get("unionid") in unionids]
    # most WeCom customers are members sharing their unionid; some members are no WeCom customers
    assert 0.5 < len(with_wecom) / len(wecom) < 0.85
    without = [m for m in members if m.get("unionid", "") not in unionids]
    assert len(without) > 0.15 * len(members)
    # some WeCom customers are no members but buy in the mini-program by unionid
    member_unionids = {m.get("unionid") for m in members}
    mini = {
        o["unionid"] for o in rx.rows["orders"].values() if o.get("unionid") and o["unionid"] not in member_unionids
    }
    assert mini and len(mini & unionids) >= 0.9 * len(mini)  # (a few were deleted by their employee)
    # a few phones typed with a country code or dashes
    assert any(m.get("phone", "").startswith(("+86", "86")) for m in members)
    # a few gifts: an order with its buyer's unionid and another member's phone (an identity conflict)
    owner = {digits(m["phone"]): m.get("unionid", "") for m in members if m.get("phone")}
    gifts = [
        o
        for o in rx.rows["orders"].values()
        if o.get("unionid") and o.get("phone") and owner.get(digits(o["phone"])) not in ("", None, o["unionid"])
    ]
    assert 1 <= len(gifts) <= 0.01 * len(rx.rows["orders"])
    # every order and event names its customer by keys the product resolves
    for e in rx.rows["events"].values():
        assert set(e) & {"unionid", "member_no", "external_userid", "openid"}
    clicks = [e for e in rx.rows["events"].values() if e["type"] == "link_clicked"]
    assert clicks and sum(e["external_userid"] in wecom for e in clicks) >= 0.9 * len(clicks)


# --- delivery ------------------------------------------------------------------------------------------
def test_retries_on_5xx_and_never_drops_a_batch(sim, ingest_for):
    sim.control("mall/seed", {"months": 1})
    rx = ingest_for(fail_first=3)
    answer = sim.control("mall/history", {"months": 1})
    seen_error = wait_for(lambda: (h := sim.control("mall/status")["outbox"]["head"]) and h["attempts"] and h, 20, 0.1)
    assert "HTTP 500" in seen_error["last_error"]
    status = drained(sim)
    assert rx.attempts >= answer["batches"] + 3
    assert len(rx.rows["orders"]) == answer["orders"] and len(rx.rows["members"]) == answer["members"]
    assert len(rx.rows["events"]) == answer["events"]
    assert status["answers"]["created"] == answer["members"] + answer["orders"] + answer["events"]


def test_unreachable_product_waits_then_delivers(sim, ingest_for):
    sim.control("mall/seed", {"months": 1})
    sim.control("mall/connect", {"url": f"http://127.0.0.1:{free_port()}", "token": TOKEN})
    answer = sim.control("mall/history", {"months": 1})
    head = wait_for(lambda: (h := sim.control("mall/status")["outbox"]["head"]) and h["attempts"] >= 2 and h, 20)
    assert head["last_error"] and sim.control("mall/status")["outbox"]["pending"] == answer["batches"]
    rx = ingest_for()  # connecting again makes the waiting batches due at once
    drained(sim)
    assert len(rx.rows["orders"]) == answer["orders"]


def test_rows_the_product_refuses_are_logged(sim, ingest_for):
    sim.control("mall/seed", {"months": 1})
    rx = ingest_for(refuse=lambda kind, row: kind == "orders" and row["order_no"].endswith("7"))
    answer = sim.control("mall/history", {"months": 1})
    status = drained(sim)
    refused = [o for o in rx.calls for r in o[2] if o[0] == "orders" and r["order_no"].endswith("7")]
    assert refused and status["row_errors"] == len(refused)
    assert status["answers"]["failed"] == len(refused)
    recent = status["recent_row_errors"]
    assert recent and all(e["kind"] == "orders" and e["id"].endswith("7") for e in recent)
    assert recent[0]["errors"] == {"amount": "refused"}
    assert len(rx.rows["orders"]) == answer["orders"] - len(refused)
    assert "token" not in json.dumps(status).replace('"token": true', "")


def test_live_orders_keep_coming(sim, ingest_for):
    sim.control("mall/seed", {"months": 1})
    rx = ingest_for()
    history = sim.control("mall/history", {"months": 1})
    drained(sim)
    last = max(rx.rows["orders"])
    t0 = time.time()
    sim.control("mall/live", {"on": True, "orders_per_minute": 600})
    wait_for(lambda: len([o for o in rx.rows["orders"] if o > last]) >= 60, 60, 0.2)
    new = [rx.rows["orders"][o] for o in rx.rows["orders"] if o > last]
    assert all(at(o, "paid_at").timestamp() > t0 - 120 for o in new)
    sim.control("mall/live", {"on": False})
    status = sim.control("mall/status")
    assert status["live"]["on"] is False and status["live"]["orders"] >= 60
    assert rx.duplicates == 0
    assert status["counts"]["orders"] > history["orders"]
    # new orders bring their events (visits, browsing, points)
    assert any(at(e, "at").timestamp() > t0 - 120 for e in rx.rows["events"].values())


def test_control_actions_refuse_bad_input(sim):
    bad = [
        ("mall/connect", {"url": "ftp://x"}),
        ("mall/connect", {"url": "http://x", "token": "has space"}),
        ("mall/history", {"months": 0}),
        ("mall/history", {"months": 99}),
        ("mall/live", {"orders_per_minute": -1}),
        ("mall/live", {"on": "maybe"}),
        ("mall/seed", {"months": 25}),
        ("mall/status", {"x": 1}),
    ]
    for name, body in bad:
        r = sim.control(name, body, expect_ok=False)
        assert r["ok"] is False and r["error"], (name, body, r)
    sim.control("mall/seed", {"months": 2})
    r = sim.control("mall/history", {"months": 6}, expect_ok=False)
    assert r["ok"] is False and "months" in r["error"]
    status = sim.control("mall/status")
    assert status["token"] in (True, False) and TOKEN not in json.dumps(status)
