"""The one door to WeCom. Other apps call ``gateway.contact()`` / ``gateway.app()``, never URLs."""

from siyu.wecom.client import WeComAPIError, WeComClient, client, collect_calls, record_calls  # noqa: F401


def contact() -> WeComClient:
    """Client for the customer-contact (客户联系) secret: customers, tags, groups, messages..."""
    return client("contact")


def app() -> WeComClient:
    """Client for the self-built app's secret: app messages (message/send) and media."""
    return client("app")
