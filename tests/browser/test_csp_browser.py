"""Issue 14, defect 9: every main console page works under the strict Content-Security-Policy
(script-src 'self', no inline script or handler): no violation is reported, the charts render,
the delegated handlers that replaced inline ones work, and a channel code whose QR image WeCom
cannot serve shows the placeholder."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from siyu.channels.models import ChannelCode

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/customers/",
    "/tags/",
    "/groups/",
    "/employees/",
    "/channels/",
    "/channels/groups/",
    "/channels/welcomes/",
    "/channels/analytics/",
    "/channels/new/",
    "/broadcasts/",
    "/broadcasts/new/",
    "/transfers/",
    "/transfers/resigned/",
    "/transfers/onjob/",
    "/transfers/churn/",
    "/settings/wecom/",
    "/settings/wecom/calls/",
    "/settings/wecom/callbacks/",
    "/settings/sync/",
    "/settings/api-tokens/",
    "/api/v1/docs",
]
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " "
                    + (e.sourceFile || "") + ":" + e.lineNumber);
});
"""


def test_console_pages_under_the_csp_report_no_violation(page, make_login, sign_in):
    make_login("admin")
    code = ChannelCode.objects.create(name="无图码", config_id="cfg-noimg")  # no QR URL: WeCom cannot serve it
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    page.context.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, "admin")
    csp = page.request.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]

    for url in [*PAGES, f"/channels/{code.id}/"]:
        resp = page.goto(url)
        assert resp.status == 200, url
        page.wait_for_load_state("load")
        charts = page.locator("[data-chart]")
        for i in range(charts.count()):  # every chart on the page was drawn by ECharts
            expect(charts.nth(i).locator("canvas")).to_have_count(1)
        violations = page.evaluate("window.__csp")
        assert not violations, (url, violations)
    csp_console = [t for t in console if "Content Security Policy" in t]
    assert not csp_console, csp_console

    # the overview and channel analytics draw charts
    page.goto("/")
    expect(page.locator(".chart canvas")).to_have_count(1)
    page.goto("/channels/analytics/")
    expect(page.locator("[data-testid=analytics-chart] canvas")).to_have_count(1)

    # the QR preview of a code WeCom cannot serve falls back to the placeholder
    page.goto(f"/channels/{code.id}/")
    img = page.locator("[data-testid=qr-preview]")
    expect(img).to_have_attribute("src", "/static/siyu/qr-unavailable.svg")
    expect(img).to_have_attribute("alt", "二维码暂不可用：无法连接企业微信，请稍后重试。")
    assert page.evaluate("document.querySelector('[data-testid=qr-preview]').naturalWidth") > 0

    # an autosubmit select (was an inline onchange) still submits
    page.goto("/broadcasts/")
    page.select_option("select[name=status]", index=1)
    page.wait_for_url("**/broadcasts/?*status=*")
    assert not page.evaluate("window.__csp")

    # the API docs (ninja's Swagger UI, started from a static file) render under the same policy
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Siyu API")
    assert not page.evaluate("window.__csp")

    # the listener is live: an inline handler is refused and reported
    page.evaluate("document.body.setAttribute('onclick', 'window.__ran = 1')")
    page.click("body", position={"x": 5, "y": 5})
    assert page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
