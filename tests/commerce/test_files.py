"""``siyu import`` (CSV in UTF-8 / UTF-8-BOM / GBK, XLSX), dry runs, errors files, and the
console's import jobs (upload → worker → progress → errors download)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from siyu.accounts.models import Profile as Account
from siyu.cli import ALIASES
from siyu.commerce import services
from siyu.commerce.models import Event, ImportJob, Order, OrderItem
from siyu.profiles.models import CustomField, Profile
from tests.helpers import client_for, make_user

pytestmark = pytest.mark.django_db

ORDER_HEADER = (
    "order_no,phone,member_no,paid_at,amount,status,refunded_amount,item_sku,item_name,item_quantity,item_price\n"
)
ORDERS = (
    ORDER_HEADER
    + "SO1,13800138000,,2026-05-01 10:00:00,300.00,paid,0,A,戒指,1,100\n"
    + "SO1,13800138000,,2026-05-01 10:00:00,300.00,paid,0,B,项链,2,100\n"
    + "SO2,,M9,2026-05-02 10:00:00,-1,paid,0,C,耳环,1,1\n"
    + "SO2,,M9,2026-05-02 10:00:00,-1,paid,0,D,手链,1,1\n"
    + "SO3,,,2026-05-03 10:00:00,5,paid,0,,,,\n"
    + "SO4,+86 139 0000 0000,M4,2026-05-03T10:00:00+08:00,50,refunded,,,,,\n"
)


def run(kind, path, *args):
    out = io.StringIO()
    call_command("import_data", kind, str(path), "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_csv_orders_bad_rows_reported_good_ones_whole_then_idempotent(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(ORDERS, encoding="utf-8")
    errors = tmp_path / "errs.csv"
    out = run("orders", f, "--source", "pos", "--errors-out", str(errors))
    assert "created 2, updated 0, unchanged 0, failed 2" in out
    assert sorted(Order.objects.values_list("order_no", flat=True)) == ["SO1", "SO4"]
    so1 = Order.objects.get(order_no="SO1")
    assert sorted(OrderItem.objects.filter(order=so1).values_list("sku", "quantity")) == [("A", 1), ("B", 2)]
    assert Order.objects.get(order_no="SO4").refunded_amount == 50
    with errors.open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "id", "field", "message"]
    assert ["4", "SO2", "amount", "must be between 0 and 9999999999.99"] in rows
    assert rows[2][:3] == ["6", "SO3", "keys"]
    out = run("orders", f, "--source", "pos", "--errors-out", str(errors))
    assert "created 0, updated 0, unchanged 2, failed 2" in out
    # a refund in a later file updates the order
    f.write_text(ORDER_HEADER + "SO1,13800138000,,2026-05-01 10:00:00,300.00,part_refunded,100,A,戒指,1,100\n")
    assert "updated 1" in run("orders", f, "--source", "pos")
    assert Order.objects.get(order_no="SO1").refunded_amount == 100
    assert OrderItem.objects.filter(order=so1).count() == 1


def test_dry_run_writes_nothing(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(ORDERS, encoding="utf-8")
    out = run("orders", f, "--dry-run", "--json")
    assert '"created": 2' in out and '"failed": 2' in out and '"dry_run": true' in out
    assert not Order.objects.exists() and not Profile.objects.exists()


def test_gbk_and_bom_csv_and_xlsx(tmp_path):
    gbk = tmp_path / "members-gbk.csv"
    gbk.write_bytes("member_no,name,gender,level\nM1,张三,女,金卡\n".encode("gbk"))
    assert "created 1" in run("members", gbk)
    assert Profile.objects.get(member_no="M1").name == "张三"
    bom = tmp_path / "events.csv"
    bom.write_bytes(
        b"\xef\xbb\xbf"
        + b"event_id,openid,type,at,props\n"
        + b'E1,o1,coupon_claimed,2026-05-01,"{""coupon"": ""C1""}"\n'
        + b"E2,o1,x y,2026-05-01,\n"
    )
    assert "created 1" in run("events", bom) and Event.objects.get().props == {"coupon": "C1"}
    CustomField.objects.create(key="size", label="尺码", type="choice", options=["S", "M"])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["member_no", "phone", "points", "birthday", "custom.size"])
    ws.append([12345, 13800000000, 88, "1990-01-02", "M"])
    ws.append(["M3", "", "lots", "", ""])
    ws.append(["M4", "", "", "", "XL"])
    x = tmp_path / "members.xlsx"
    wb.save(x)
    out = run("members", x, "--errors-out", str(tmp_path / "e.csv"))
    assert "created 1" in out and "failed 2" in out
    p = Profile.objects.get(member_no="12345")
    assert (p.phone, p.points, str(p.birthday), p.custom) == ("13800000000", 88, "1990-01-02", {"size": "M"})


def test_unreadable_files(tmp_path):
    png = tmp_path / "x.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(CommandError):
        run("orders", png)
    fake = tmp_path / "x.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CommandError):
        run("orders", fake)
    with pytest.raises(CommandError):
        run("orders", tmp_path / "missing.csv")
    assert ALIASES["import"] == "import_data"


def test_console_upload_worker_progress_errors_download(tmp_path, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    op = make_user("cdp-operator", Account.OPERATOR)
    c = client_for(op)
    page = c.get("/commerce/imports/")
    assert page.status_code == 200 and "数据导入" in page.content.decode()
    tpl = c.get("/commerce/imports/template/orders.csv")
    assert tpl.status_code == 200 and b"order_no" in tpl.content and b"item_sku" in tpl.content
    upload = SimpleUploadedFile("我的订单.csv", ORDERS.encode("utf-8"), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post("/commerce/imports/", {"kind": "orders", "file": upload})
    assert r.status_code == 302
    task = "siyu.commerce.tasks.run_import_job"
    assert DBTaskResult.objects.filter(task_path=task, status="READY").count() == 1
    job = ImportJob.objects.get()
    assert job.status == "queued" and job.filename == "我的订单.csv" and not job.dry_run
    panel = c.get(f"/commerce/imports/{job.id}/progress/").content.decode()
    assert "hx-get" in panel  # polls while queued
    services.run_import_job(job.id)  # what the worker's task does
    job.refresh_from_db()
    assert (job.status, job.created, job.failed, job.processed) == ("done", 2, 2, 6)
    panel = c.get(f"/commerce/imports/{job.id}/progress/").content.decode()
    assert "hx-get" not in panel and "失败 2" in panel
    dl = c.get(f"/commerce/imports/{job.id}/errors.csv")
    assert dl.status_code == 200 and b"SO2" in b"".join(dl.streaming_content)
    assert services.run_import_job(job.id).status == "done"  # a second task for the same job does nothing
    assert Order.objects.count() == 2
    # a job left running by a killed worker is queued again when a worker starts
    DBTaskResult.objects.all().delete()
    ImportJob.objects.filter(id=job.id).update(status="running")
    assert services.resume_import_jobs() == 1 and services.resume_import_jobs() == 0
    assert DBTaskResult.objects.filter(task_path=task).count() == 1
    ImportJob.objects.filter(id=job.id).update(status="done")
    assert "我的订单.csv" in c.get(f"/commerce/imports/{job.id}/").content.decode()
    assert "我的订单.csv" in c.get("/commerce/imports/").content.decode()
    # dry run from the console
    upload = SimpleUploadedFile("again.csv", ORDERS.encode("utf-8"))
    c.post("/commerce/imports/", {"kind": "orders", "file": upload, "dry_run": "on"})
    job2 = ImportJob.objects.latest("id")
    services.run_import_job(job2.id)
    job2.refresh_from_db()
    assert job2.dry_run and (job2.created, job2.unchanged) == (0, 2) and Order.objects.count() == 2


def test_console_hostile_uploads_and_roles():
    op = make_user("cdp-op2", Account.OPERATOR)
    c = client_for(op)
    for name, data in [("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), ("x.csv", b""), ("x.exe", b"MZ\x00\x00\x00")]:
        r = c.post("/commerce/imports/", {"kind": "orders", "file": SimpleUploadedFile(name, data)})
        assert r.status_code == 400
    r = c.post("/commerce/imports/", {"kind": "nope", "file": SimpleUploadedFile("a.csv", b"a,b\n")})
    assert r.status_code == 400
    assert not ImportJob.objects.exists()
    # a file the sniffer accepts but that cannot be read: the job fails with a reason
    r = c.post("/commerce/imports/", {"kind": "orders", "file": SimpleUploadedFile("a.xlsx", b"PK\x03\x04garbage")})
    job = ImportJob.objects.get()
    services.run_import_job(job.id)
    job.refresh_from_db()
    assert job.status == "failed" and job.error
    assert c.get(f"/commerce/imports/{job.id}/errors.csv").status_code == 404
    assert c.get("/commerce/imports/999999/progress/").status_code == 404
    assert c.get("/commerce/imports/template/nope.csv").status_code == 404
    guide = make_user("cdp-guide", Account.GUIDE, wecom_userid="g1")
    g = client_for(guide)
    assert g.get("/commerce/imports/").status_code == 403
    assert g.get(f"/commerce/imports/{job.id}/progress/").status_code == 403
    assert (
        g.post("/commerce/imports/", {"kind": "orders", "file": SimpleUploadedFile("a.csv", b"a\n")}).status_code == 403
    )
    manager = make_user("cdp-mgr", Account.STORE_MANAGER, department_id=1)
    assert client_for(manager).get("/commerce/imports/").status_code == 403


def test_upload_size_cap(monkeypatch):
    monkeypatch.setattr(services, "UPLOAD_MAX_BYTES", 100)
    before = set(Path(services.imports_dir()).iterdir())
    c = client_for(make_user("cdp-op3", Account.ADMIN))
    body = ORDER_HEADER + "SO1,13800138000,,2026-05-01 10:00:00,300.00,paid,0,A,戒指,1,100\n" * 5
    r = c.post("/commerce/imports/", {"kind": "orders", "file": SimpleUploadedFile("big.csv", body.encode())})
    assert r.status_code == 400 and "50 MB" in r.content.decode()
    assert not ImportJob.objects.exists()
    assert set(Path(services.imports_dir()).iterdir()) == before


def test_orders_checked_ahead_in_batches_and_a_failure_stops_the_checking_thread(tmp_path, monkeypatch):
    """An orders file is checked a batch or two ahead of its writing, by a thread: every batch is
    written in order with its own rows; a failure while writing stops that thread and is raised."""
    import threading

    from siyu.commerce import files

    monkeypatch.setattr(files, "BATCH", 3)
    lines = [f"B{i},1380013{i:04d},,2026-05-01 10:00:00,10,paid,0,S{i},x,1,10\n" for i in range(20)]
    f = tmp_path / "orders.csv"
    f.write_text(ORDER_HEADER + "".join(lines), encoding="utf-8")
    assert "created 20, updated 0, unchanged 0, failed 0" in run("orders", f, "--source", "pos")
    assert Order.objects.filter(order_no__startswith="B").count() == 20

    calls = {"n": 0}
    real = services.ingest

    def fail_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "ingest", fail_second)
    with pytest.raises(RuntimeError, match="disk full"):
        files.run_file("orders", f, source="pos2")
    assert not [t for t in threading.enumerate() if t.name == "import-check-ahead" and t.is_alive()]


def test_a_file_of_another_kind_is_refused_whole(tmp_path):
    """The events template imported as orders, or a file with no known column: refused at once,
    with what to do, rather than every line failing with "order_no required"."""
    events = tmp_path / "events.csv"
    events.write_text("event_id,phone,type,at\nE1,13800138000,store_visit,2026-05-01\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"no order_no column.*event_id, phone, type, at.*template"):
        run("orders", events)
    junk = tmp_path / "junk.csv"
    junk.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no member_no column"):
        run("members", junk)
    assert not Order.objects.exists()
    # the console's job says so too
    job = ImportJob.objects.create(kind="orders", filename="events.csv", path=str(events))
    services.run_import_job(job.id)
    job.refresh_from_db()
    assert job.status == "failed" and "no order_no column" in job.error
