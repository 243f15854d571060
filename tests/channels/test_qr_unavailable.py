"""Issue 14, defect 5: a channel code's QR image and poster while WeCom is unreachable (the image
never cached) answer 503 with a clear message and a Retry-After, never 500; the detail page keeps
working and its QR preview names a placeholder to fall back to."""

from __future__ import annotations

import pytest

from siyu.accounts.models import Profile
from siyu.channels import services
from tests.conftest import point_product_at
from tests.customers.test_customers_console import client_for
from tests.sim.helpers import employee
from tests.simproc import SimProcess


@pytest.fixture
def stopped_wecom(transactional_db):
    """A channel code created against a real emulator, which is then stopped."""
    sim = SimProcess(customers=5, seed=14).start()
    try:
        point_product_at(sim)
        code = services.create_code({"name": "停机码", "users": [employee(sim)]})
    finally:
        sim.stop()
    assert not (services.media_dir() / f"qr-{code.config_id}.png").exists()
    return code


def test_qr_and_poster_answer_503_while_wecom_is_down(stopped_wecom):
    code = stopped_wecom
    admin = client_for("qr-admin", Profile.ADMIN)
    for url in (
        f"/channels/{code.id}/qr.png",
        f"/channels/{code.id}/qr.png?size=xl&inline=1",
        f"/channels/{code.id}/poster.png",
    ):
        r = admin.get(url)
        assert r.status_code == 503, url
        assert r["Retry-After"].isdigit()
        assert r["Content-Type"].startswith("text/plain")
        body = r.content.decode()
        assert "企业微信" in body and "access_token" not in body and "http" not in body
    en = admin.get(f"/channels/{code.id}/qr.png", HTTP_ACCEPT_LANGUAGE="en")
    assert en.status_code == 503

    page = admin.get(f"/channels/{code.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="qr-preview"' in html and "qr-unavailable.svg" in html
    placeholder = admin.get("/static/siyu/qr-unavailable.svg")
    assert placeholder.status_code == 200
