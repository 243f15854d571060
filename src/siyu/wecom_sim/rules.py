"""WeCom's rules, each in one place, each with the doc it follows.

Every value is configurable at run time through the control API (``POST /sim/config`` with
``{"rules": {...}}``) or ``SIM_RULES`` (JSON) in the environment. Defaults are today's values;
where WeCom changed a rule over the years the older value is a documented option.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, fields


@dataclass
class Rules:
    # gettoken doc (获取access_token): tokens live 7200 s; asking again while valid returns the same one.
    token_ttl_s: int = 7200
    # send_welcome_msg doc 92137: a welcome_code is valid 20 s after the event, single use.
    welcome_code_ttl_s: int = 20
    # add_msg_template doc 92135: at most 10,000 external_userid per call, 2,000 chat ids.
    msg_template_max_recipients: int = 10000
    msg_template_max_chats: int = 2000
    # add_msg_template doc 92135 (updated 2025-11): a customer / a group receives at most as many
    # mass messages per natural month as the month has days; the admin may switch to 7 per week or
    # 1 per day. Before that: 4 per natural month ("monthly_4"). Modes: days_in_month, weekly_7,
    # daily_1, monthly_4.
    customer_msg_quota_mode: str = "days_in_month"
    group_msg_quota_mode: str = "days_in_month"
    # Moments: no current API doc states a per-customer cap; WeCom 3.0 (2020) showed a customer at
    # most 1 corp post a day and 4 a month. Off by default (0 = no cap); a capped customer is
    # silently left out of get_moment_send_result.
    moment_daily_cap: int = 0
    moment_monthly_cap: int = 0
    # remind_groupmsg_send doc: at most 3 reminders per message in 24 h.
    remind_max_per_24h: int = 3
    # transfer_customer doc 96325 / resigned 94081: takeover after 24 h unless the customer refuses.
    transfer_accept_after_s: int = 24 * 3600
    # transfer_customer doc 96325 (updated 2023-12-01): an on-job customer at most 2 times in 90 days.
    onjob_transfers_per_90d: int = 2
    transfer_window_days: int = 90
    transfer_max_per_call: int = 100
    # resigned transfer: the departed employee must have left within the last year (doc 94081).
    resigned_max_age_days: int = 365
    # groupchat transfer: 1..100 chat ids per call; on-job at most 2 per group per 90 days;
    # at most 300 groups a day from one owner to one new owner.
    group_transfer_max_per_call: int = 100
    group_onjob_transfers_per_90d: int = 2
    group_transfer_daily_cap: int = 300
    # groupchat docs: a customer group holds 500 members for a verified corp (200 otherwise;
    # which corps get which is unverified, so the value is configurable).
    group_max_members: int = 500
    # add_join_way doc 92229: chat_id_list at most 5; state at most 30 characters.
    join_way_max_chats: int = 5
    # add_contact_way doc 92228: state and remark at most 30 characters.
    state_max_len: int = 30
    # add_contact_way doc 92228: 500,000 API-created contact ways + join ways per corp (41045).
    contact_way_cap: int = 500000
    # add_contact_way: users per way (41041). The doc gives no number; write-ups quote 100 (unverified).
    contact_way_max_users: int = 100
    # corp tag doc 92117: 3,000 corp tags per corp (40126); names at most 30 characters.
    corp_tag_cap: int = 3000
    tag_name_max_len: int = 30
    # group welcome template doc 92366: 100 per corp (41055).
    group_welcome_template_cap: int = 100
    # media/upload doc: temporary media valid 3 days (then 40007).
    media_ttl_s: int = 3 * 24 * 3600
    # 访问频率限制 doc 90454 (2023-08-28): per corp per API 10,000/min and 150,000/h → 45009.
    # A per-minute breach blocks 60 s, a per-hour breach 60 min.
    freq_per_min: int = 10000
    freq_per_hour: int = 150000
    # 45033: concurrent calls over the limit. WeCom publishes no number (unverified); 0 = off.
    max_concurrent: int = 0
    # message/send doc 90236 / 90454: per app to one member at most 30/min and 1,000/h; the excess
    # is silently dropped. touser at most 1,000.
    app_msg_per_member_min: int = 30
    app_msg_per_member_hour: int = 1000
    # Callbacks (接收消息与事件 概述): WeCom waits 5 s, then retries; "总共重试三次" (3 retries, 4
    # attempts). The retry interval is not documented (unverified): near-immediate is reported.
    callback_timeout_s: float = 5.0
    callback_retries: int = 3
    callback_retry_delay_s: float = 1.0
    # Fault injection: the fraction of API calls answered with -1 "system busy".
    fault_busy_rate: float = 0.0


_lock = threading.Lock()
_current = Rules()


def _load_env() -> None:
    raw = os.environ.get("SIM_RULES")
    if raw:
        update(json.loads(raw))


def get() -> Rules:
    return _current


def update(values: dict) -> Rules:
    """Apply overrides; unknown keys raise ValueError so a typo never silently does nothing."""
    global _current
    names = {f.name: f.type for f in fields(Rules)}
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
    with _lock:
        data = asdict(_current)
        data.update(values)
        _current = Rules(**data)
    return _current


def reset() -> Rules:
    global _current
    with _lock:
        _current = Rules()
    _load_env()
    return _current


def as_dict() -> dict:
    return asdict(_current)


_load_env()
