"""With WeCom unreachable, no access token, secret, callback token or AES key leaks anywhere.

A network error's text quotes the request URL, ``?access_token=…`` (or ``corpsecret=…`` for
gettoken) included (issue 14, defect 1). Here the product is synced from an emulator of its own,
which is then stopped: every later call meets a closed port while the product still holds a valid
access token. REST routes, console pages, the worker (callback inbox, timers, Django tasks) and a
direct full sync are driven into that failure; then every REST answer and page, every text column
of every model of the product's apps, every log record and everything written to stdout/stderr
is searched for the secrets.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.apps import apps
from django.db import connection, models
from django.test import Client

from siyu.accounts import services as accounts
from siyu.accounts.models import Profile
from siyu.customers.models import Customer, FollowRelation, Tag
from siyu.org.models import Employee
from siyu.wecom import config, gateway
from siyu.wecom.models import AccessToken, ApiCall, CallbackInbox
from tests.conftest import CALLBACK_AES_KEY, CALLBACK_TOKEN, point_product_at
from tests.simproc import SimProcess

API = "/api/v1"
# The token cache holds the token by design (encrypting it is not part of this fix).
NOT_SCANNED = {AccessToken}


def _text_columns(model) -> list[str]:
    return [
        f.column
        for f in model._meta.concrete_fields
        if isinstance(f, (models.CharField, models.TextField, models.JSONField))
    ]


def stored_texts():
    """(table, column, value) for every text column of every model of Siyu and the task backend,
    as stored: read with SQL, around the fields (an encrypted field would decrypt)."""
    for app in apps.get_app_configs():
        if not (app.name.startswith("siyu") or app.name == "django_tasks_db"):
            continue
        for model in app.get_models():
            if model in NOT_SCANNED:
                continue
            columns = _text_columns(model)
            if not columns:
                continue
            q = connection.ops.quote_name
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {', '.join(map(q, columns))} FROM {q(model._meta.db_table)}")
                for row in cursor.fetchall():
                    for column, value in zip(columns, row, strict=True):
                        if value not in (None, ""):
                            yield model._meta.db_table, column, str(value)


class Api:
    def __init__(self, user):
        self.client = Client(raise_request_exception=False)
        self.headers = {"Authorization": f"Bearer {accounts.create_api_token(user, 'leak')[1]}"}

    def post(self, path: str, body: dict | None = None):
        return self.client.post(
            API + path, json.dumps(body or {}), content_type="application/json", headers=self.headers
        )

    def get(self, path: str):
        return self.client.get(API + path, headers=self.headers)


@pytest.fixture
def unreachable_wecom(transactional_db, settings):
    """The product synced from its own emulator, which is then stopped. Yields the secrets."""
    from siyu.sync.services import run_full_sync

    with SimProcess(customers=40, seed=14) as sim:
        point_product_at(sim)
        run = run_full_sync(workers=2)
        assert run.status == "done", run.error
        assert gateway.app().access_token  # a token per secret, cached (table and memory)
        tokens = [
            json.loads(v) for v in AccessToken.objects.filter(key__endswith=":token").values_list("value", flat=True)
        ]
        assert tokens
        secrets = {"contact secret": sim.secret, "app secret": sim.app_secret}
    # the emulator is gone: its port is closed; fail fast
    settings.WECOM = {**settings.WECOM, "RATE_LIMIT_RETRIES": 1, "RATE_LIMIT_BACKOFF_S": 0.01, "TIMEOUT_S": 2}
    config.invalidate()
    secrets.update({"callback token": CALLBACK_TOKEN, "AES key": CALLBACK_AES_KEY})
    secrets.update({f"access token {i}": t for i, t in enumerate(tokens)})
    yield secrets
    config.invalidate()


def assert_clean(where: str, text: str, secrets: dict) -> None:
    for name, value in secrets.items():
        assert value not in text, f"{name} in {where}"
    for marker in ("access_token=", "corpsecret="):
        assert f"{marker}***" in text or marker not in text.lower(), f"{marker} with a value in {where}"


def test_nothing_leaks_while_wecom_is_unreachable(unreachable_wecom, caplog, capfd):
    secrets = unreachable_wecom
    siyu_logger = logging.getLogger("siyu")  # does not propagate to the root logger
    siyu_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)  # urllib3 logs its URLs at DEBUG
    for name in ("siyu", "urllib3", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    answers: dict[str, str] = {}
    try:
        _drive_rest(answers)
        _drive_console(answers)
        _drive_worker()
        _drive_sync(answers)
    finally:
        siyu_logger.removeHandler(caplog.handler)
        logging.getLogger("siyu").setLevel(logging.INFO)
        logging.getLogger("urllib3").setLevel(logging.NOTSET)
        logging.getLogger("requests").setLevel(logging.NOTSET)

    # the failures did happen, and were recorded as such
    unreachable = ApiCall.objects.filter(errcode__isnull=True)
    assert unreachable.filter(errmsg__startswith="WeCom unreachable: connection refused").exists()
    assert set(unreachable.values_list("path", flat=True)) >= {"externalcontact/mark_tag", "gettoken"}
    failures = json.loads(answers["bulk-tag (admin)"])["failures"]
    assert failures and all(f["errmsg"].startswith("WeCom unreachable: connection refused") for f in failures)
    assert "WeCom unreachable" in answers["channel-codes"]
    assert CallbackInbox.objects.exclude(error="").exists()

    for where, text in answers.items():
        assert_clean(f"the answer of {where}", text, secrets)
    stored = 0
    for model, field, value in stored_texts():
        assert_clean(f"{model}.{field}", value, secrets)
        stored += 1
    assert stored > 100
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "WeCom unreachable" in logged
    assert_clean("the log", logged, secrets)
    out, err = capfd.readouterr()
    assert_clean("stdout", out, secrets)
    assert_clean("stderr", err, secrets)


def _drive_rest(answers: dict) -> None:
    admin, _ = accounts.ensure_user("leak-admin", "leak-pass-word-1", role=Profile.ADMIN)
    api = Api(admin)
    customers = list(Customer.objects.filter(status=Customer.ACTIVE).order_by("id")[:3])
    tag = Tag.objects.filter(deleted=False).first()
    r = api.post("/customers/bulk-tag", {"customer_ids": [c.id for c in customers], "add_tag": [tag.tag_id]})
    assert r.status_code == 200, r.content
    answers["bulk-tag (admin)"] = r.content.decode()

    rel = FollowRelation.objects.filter(status=FollowRelation.ACTIVE).select_related("employee", "customer").first()
    guide, _ = accounts.ensure_user(
        "leak-guide", "leak-pass-word-1", role=Profile.GUIDE, wecom_userid=rel.employee.userid
    )
    r = Api(guide).post("/customers/bulk-tag", {"customer_ids": [rel.customer_id], "add_tag": [tag.tag_id]})
    answers["bulk-tag (guide)"] = r.content.decode()
    assert r.status_code == 200 and json.loads(r.content)["failures"], r.content

    r = api.post("/channel-codes", {"name": "leak", "kind": "channel", "users": [rel.employee.userid]})
    assert r.status_code == 502, r.content
    answers["channel-codes"] = r.content.decode()

    r = api.post("/broadcasts/", {"name": "leak", "text": "hi", "tags": [tag.id]})
    answers["broadcasts create"] = r.content.decode()
    if r.status_code == 201:
        bid = r.json()["id"]
        answers["broadcasts send"] = api.post(f"/broadcasts/{bid}/send").content.decode()

    others = Employee.objects.filter(status=Employee.STATUS_ACTIVE, contact_enabled=True).exclude(id=rel.employee_id)
    takeover = others.first()
    if takeover is not None:
        r = api.post(
            "/transfers/onjob",
            {
                "handover_userid": rel.employee.userid,
                "takeover_userid": takeover.userid,
                "external_userids": [rel.customer.external_userid],
                "message": "leak",
            },
        )
        answers["transfers onjob"] = r.content.decode()
    answers["transfers poll"] = api.post("/transfers/poll").content.decode()
    answers["transfers unassigned"] = api.get("/transfers/unassigned").content.decode()


def _drive_console(answers: dict) -> None:
    admin = accounts.ensure_user("leak-console", "leak-pass-word-1", role=Profile.ADMIN)[0]
    c = Client(raise_request_exception=False)
    c.force_login(admin)
    AccessToken.objects.all().delete()  # gettoken with corpsecret= in its URL
    from siyu.wecom.client import DbTokenStorage

    DbTokenStorage.clear_memory()
    answers["settings test (htmx)"] = c.post("/settings/wecom/test/", HTTP_HX_REQUEST="true").content.decode()
    answers["settings test"] = c.post("/settings/wecom/test/").content.decode()
    answers["tags refresh"] = c.post("/tags/refresh/", follow=True).content.decode()
    answers["sync now"] = c.post("/settings/sync/run/", follow=True).content.decode()
    for page in (
        "/",
        "/settings/wecom/",
        "/settings/wecom/calls/",
        "/settings/wecom/calls/?errors=1",
        "/settings/wecom/callbacks/",
        "/settings/sync/",
        "/tags/",
        "/channels/",
        "/broadcasts/",
        "/transfers/",
        "/transfers/resigned/",
    ):
        answers[page] = c.get(page).content.decode()


def _drive_worker() -> None:
    """A callback that needs a re-read, the broadcast's timers and the queued sync task."""
    from siyu.core.worker import Worker

    rel = FollowRelation.objects.filter(status=FollowRelation.ACTIVE).select_related("employee", "customer").first()
    now = int(time.time())
    CallbackInbox.objects.create(
        dedupe_key=f"leak-{now}",
        event="change_external_contact",
        change_type="edit_external_contact",
        create_time=now,
        payload=(
            "<xml><ToUserName><![CDATA[corp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[edit_external_contact]]></ChangeType>"
            f"<UserID><![CDATA[{rel.employee.userid}]]></UserID>"
            f"<ExternalUserID><![CDATA[{rel.customer.external_userid}]]></ExternalUserID></xml>"
        ),
    )
    from siyu.core.models import Timer

    Timer.objects.update(run_after=0)  # the broadcast's timers: due now
    Worker(interval=0.05).run(max_idle_s=1.0)


def _drive_sync(answers: dict) -> None:
    from siyu.sync.services import SyncBusy, run_full_sync

    try:
        run = run_full_sync(restart=True, workers=2)
    except SyncBusy as e:  # pragma: no cover - the worker's run is still leased
        answers["sync busy"] = str(e)
        return
    except gateway.WeComAPIError as e:  # the run stops; its error is stored (and scanned)
        answers["sync exception"] = str(e)
        return
    answers["sync run"] = run.error or ""
