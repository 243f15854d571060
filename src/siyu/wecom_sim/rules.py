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

    # --- customers, tags, contact ways, welcome messages, groups, join ways (part 1) ---------
    # externalcontact/get doc 92114: follow_user is paged (cursor/next_cursor) beyond 500 followers.
    follow_user_page_size: int = 500
    # externalcontact/list: a member with no customers gets 84061 (community-observed, unverified);
    # False answers an empty external_userid list instead.
    empty_customer_list_84061: bool = True
    # del_follow_user is one-way (part 3 §2.1): the employee still holds the customer, shown as
    # "deleted me", so list/get/batch keep returning that relation. False hides it (unverified).
    deleted_by_customer_still_listed: bool = True
    # batch/get_by_user doc 92994: userid_list at most 100; limit default 50, max 100 (clamped).
    batch_get_by_user_max_users: int = 100
    batch_get_by_user_default_limit: int = 50
    batch_get_by_user_max_limit: int = 100
    # remark doc 92115: remark ≤ 20 chars, description ≤ 150, remark_company ≤ 20; at most 5
    # remark_mobiles (the 5 is unverified).
    remark_max_len: int = 20
    description_max_len: int = 150
    remark_company_max_len: int = 20
    remark_mobiles_max: int = 5
    # API edits (remark, mark_tag) fire edit_external_contact? The doc only names edits made by the
    # employee; part 1 §3.5 says current docs describe no callback for API-made changes (unverified).
    customer_api_edits_callback: bool = False
    # Corp-tag CRUD through the API fires change_external_tag like console edits do? Unverified
    # (part 3 §2.3); on by default so the product sees console-equivalent changes.
    tag_api_changes_callback: bool = True
    # add_contact_way doc 92228: remark ≤ 30 characters; style values 1..N for scene 1 (the value
    # set in the doc's appendix is unverified; 41042 beyond it).
    contact_way_remark_max_len: int = 30
    contact_way_max_style: int = 3
    # Temporary-chat ways (doc 92228): QR valid 7 d by default, at most 14 d; chat valid 24 h by
    # default, at most 14 d; at most 100,000 created a day (the errcode for that cap is unverified:
    # 41045 is used).
    temp_way_expires_default_s: int = 7 * 24 * 3600
    temp_way_expires_max_s: int = 14 * 24 * 3600
    temp_chat_expires_default_s: int = 24 * 3600
    temp_chat_expires_max_s: int = 14 * 24 * 3600
    temp_contact_way_daily_cap: int = 100000
    # list_contact_way: default window the last 90 days; limit default 100, max 1000.
    list_contact_way_window_s: int = 90 * 24 * 3600
    list_contact_way_default_limit: int = 100
    list_contact_way_max_limit: int = 1000
    # send_welcome_msg doc 92137: text ≤ 4000 bytes, at most 9 attachments.
    welcome_text_max_bytes: int = 4000
    welcome_max_attachments: int = 9
    # group_welcome_template doc 92366: text.content ≤ 3000 bytes.
    group_welcome_text_max_bytes: int = 3000
    # A customer scanning a skip-verify way: add_half_external_contact, then the employee adds
    # back (add_external_contact). True = at once; False = when /sim/confirm_add is called.
    employee_confirms_half_add_immediately: bool = True
    # add_join_way doc 92229: remark over 30 characters is truncated; room_base_name ≤ 40.
    join_way_remark_max_len: int = 30
    room_base_name_max_len: int = 40
    # groupchat/list doc 92120: without owner_filter, more than 1000 people in the app's
    # visibility → 81017. The emulated app sees every active employee. 0 = off.
    groupchat_list_visible_cap: int = 1000
    groupchat_list_max_owners: int = 100
    # groupchat/list doc 93414: groups whose owner resigned are only listed when owner_filter
    # names that owner (resigned members are outside the app's visibility).
    groupchat_list_hides_resigned_owners: bool = True

    # --- mass messages, Moments, transfers, statistics, app messages, media (part 2) ---------
    # media/upload doc (part 2 §6.1): every file > 5 bytes; image and voice 2 MB, video 10 MB,
    # file 20 MB (45001 beyond, 40006 at or under 5 bytes, 44001 empty).
    media_min_bytes: int = 5
    media_image_max_bytes: int = 2 * 1024 * 1024
    media_voice_max_bytes: int = 2 * 1024 * 1024
    media_video_max_bytes: int = 10 * 1024 * 1024
    media_file_max_bytes: int = 20 * 1024 * 1024
    # media/upload_attachment doc 95098: image, video and file at most 10 MB each; the Moments doc
    # 96351 also says image ≤ 10 MB and video ≤ 10 MB (the file figure is unverified).
    attachment_max_bytes: int = 10 * 1024 * 1024
    # media/uploadimg: doc 90454 says 1,000 a day and 3,000 a month per corp; an older copy says
    # 100 a day (part 2 §6.3, which is current is unverified). Over the quota → 45009.
    uploadimg_daily_cap: int = 1000
    uploadimg_monthly_cap: int = 3000
    # add_msg_template doc 92135: at most 9 attachments; text.content ≤ 4000 bytes; a tag_filter
    # group_list entry holds at most 100 tags.
    msg_template_max_attachments: int = 9
    msg_template_text_max_bytes: int = 4000
    msg_template_max_tags_per_group: int = 100
    # get_groupmsg_list_v2 doc 93338: start/end at most one month apart (read as 31 days);
    # limit default 50, max 100 (a larger value falls back to the default).
    groupmsg_list_max_span_days: int = 31
    groupmsg_list_default_limit: int = 50
    groupmsg_list_max_limit: int = 100
    # get_groupmsg_task / get_groupmsg_send_result: limit default 500, max 1000.
    groupmsg_page_default_limit: int = 500
    groupmsg_page_max_limit: int = 1000
    # add_moment_task doc 96351: text ≤ 2000 characters; ≤ 9 images or 1 video or 1 link;
    # link title ≤ 64 bytes; the jobid is valid 24 h.
    moment_text_max_chars: int = 2000
    moment_max_images: int = 9
    moment_link_title_max_bytes: int = 64
    moment_job_ttl_s: int = 24 * 3600
    # get_moment_list doc 96352 (2023-12-01): span ≤ 30 days, limit max and default 20.
    moment_list_max_span_days: int = 30
    moment_list_max_limit: int = 20
    # get_moment_task / get_moment_customer_list: limit default 500, max 1000;
    # get_moment_send_result: default 3000, max 5000.
    moment_page_default_limit: int = 500
    moment_page_max_limit: int = 1000
    moment_send_result_default_limit: int = 3000
    moment_send_result_max_limit: int = 5000
    # transfer_customer doc 96325: transfer_success_msg at most 200 characters.
    transfer_success_msg_max_len: int = 200
    # transfer_result: at most 1000 customers per page (part 2 §3.2).
    transfer_result_page_size: int = 1000
    # get_unassigned_list (wechatpy docstring, doc 92124): page_size default and max 1000; with the
    # legacy page_id, page_id * page_size must stay under 50,000.
    unassigned_max_page_size: int = 1000
    unassigned_max_offset: int = 50000
    # get_user_behavior_data doc 92132: userid and partyid at most 100 each; span ≤ 30 days; only
    # the last 180 days. groupchat/statistic: the same window; userid_list ≤ 100; limit ≤ 1000.
    stats_max_ids: int = 100
    stats_max_span_days: int = 30
    stats_history_days: int = 180
    groupchat_stat_default_limit: int = 500
    groupchat_stat_max_limit: int = 1000
    # message/send doc 90236: touser at most 1000, toparty and totag at most 100 each; text and
    # markdown content ≤ 2048 bytes; news 1–8 articles; miniprogram_notice ≤ 10 content items;
    # recall only within 24 h (doc 94867); duplicate check interval default 1800 s.
    app_msg_max_users: int = 1000
    app_msg_max_parties: int = 100
    app_msg_max_tags: int = 100
    app_msg_text_max_bytes: int = 2048
    app_msg_max_articles: int = 8
    app_msg_max_content_items: int = 10
    app_msg_recall_window_s: int = 24 * 3600
    app_msg_duplicate_interval_s: int = 1800
    # Login and OAuth (part 4 §1–2): a code is single use and valid 300 s (R1); a user_ticket 1800 s
    # (R5); state at most 128 bytes of [a-zA-Z0-9] (R7).
    auth_code_ttl_s: int = 300
    user_ticket_ttl_s: int = 1800
    oauth_state_max_bytes: int = 128
    # JS-SDK tickets (doc 96909, R8): valid 7200 s, the same ticket while valid; fetched at most 400
    # times an hour per corp (get_jsapi_ticket) and 100 per app (ticket/get?type=agent_config).
    jsapi_ticket_ttl_s: int = 7200
    jsapi_ticket_corp_per_hour: int = 400
    jsapi_ticket_app_per_hour: int = 100
    # shareToExternalContact/Chat (doc 96997, R12): text ≤ 4000 characters, ≤ 9 attachments;
    # shareToExternalMoments (doc 96923, R13): text ≤ 2000 characters, ≤ 9 images or 1 video or 1 link.
    share_text_max_chars: int = 4000
    share_max_attachments: int = 9
    share_moments_text_max_chars: int = 2000

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
    # Network and service time added to every API answer, in ms (WeCom's servers are in China,
    # tens of ms from a brand's servers; the emulator answers in about 1 ms). 0 = none.
    api_latency_ms: int = 0


_lock = threading.Lock()
_current = Rules()


def _load_env() -> None:
    raw = os.environ.get("SIM_RULES")
    if raw:
        update(json.loads(raw))


def get() -> Rules:
    return _current


QUOTA_MODES = ("days_in_month", "weekly_7", "daily_1", "monthly_4")
# Bounds of every numeric rule: counts, sizes and durations are never negative, and stay within
# what the database and the clock arithmetic hold.
_INT_MAX = 2**40
_FLOAT_MAX = 1e9


def _check(name: str, value, kind) -> object:
    """``value`` as rule ``name`` of type ``kind``, or ValueError (bool is not an int here)."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"rule {name} must be true or false")
        return value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
            raise ValueError(f"rule {name} must be an integer in 0..{_INT_MAX}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= _FLOAT_MAX:
            raise ValueError(f"rule {name} must be a number in 0..{_FLOAT_MAX:g}")  # also refuses NaN
        if name == "fault_busy_rate" and value > 1:
            raise ValueError("rule fault_busy_rate must be in 0..1")
        return float(value)
    if name.endswith("_quota_mode"):
        if value not in QUOTA_MODES:
            raise ValueError(f"rule {name} must be one of {', '.join(QUOTA_MODES)}")
        return value
    raise ValueError(f"rule {name} cannot be set")  # pragma: no cover (every rule has a type above)


_TYPES = {f.name: {"int": int, "bool": bool, "float": float, "str": str}[f.type] for f in fields(Rules)}


def update(values: dict) -> Rules:
    """Apply overrides; unknown keys and values of the wrong type or range raise ValueError (a typo
    never silently does nothing, and no value can break a later API call)."""
    global _current
    if not isinstance(values, dict):
        raise ValueError("rules must be an object")
    unknown = set(values) - set(_TYPES)
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(sorted(map(str, unknown)))}")
    checked = {k: _check(k, v, _TYPES[k]) for k, v in values.items()}
    with _lock:
        data = asdict(_current)
        data.update(checked)
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
