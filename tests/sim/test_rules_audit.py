"""Audit of the emulator against every rule of the WeCom contract (issue 14).

Sources: ``shared/domain/wecom-api.md`` §5 (rows A1–A21, in table order) and the "Rules the emulator
must enforce" tables of ``wecom-api/part1..5.md`` (P1-R1 … P5-R26), plus part 3 §4 (frequency,
rows P3-F1 …). Each rule is either covered by an existing test (named below, not duplicated),
by a test function in this file (named after the rule, citing the row), or not applicable.

Status: **before** = enforced and tested before issue 14; **now** = enforced or tested since;
**n/a** = outside what the emulator serves (the reason is given).

| rule | status | test |
|---|---|---|
| A1 token lifetime 7200 s, same token, 42001/40014 | before | test_framework::test_same_token_while_valid_and_7200s_lifetime, ::test_token_errors_41001_40014_42001 |
| A2 welcome_code 20 s, single use, 41049/41050/41051 | before | test_welcome::test_welcome_code_single_use_and_20s_window |
| A3 welcome code withheld with a console welcome | before | test_welcome::test_console_welcome_means_no_code |
| A4 add_msg_template ≤ 10,000 external_userid | before; now counted as sent | test_mass::test_default_recipient_limit_10000, here test_a4_add_msg_template_at_most_10000_external_userid |
| A5 customer receive quota (days in month / 7 a week / 1 a day / 4 a month) | before | test_mass::test_days_in_month_is_the_default, ::test_fixed_quota_modes, ::test_employee_sends_count_toward_quota |
| A6 group receive quota | before | test_mass::test_group_send_results_and_group_quota |
| A7 Moments a customer sees (off by default) | before | test_moments::test_moment_caps_leave_customers_out, ::test_monthly_cap |
| A8 remind ≤ 3 per message in 24 h | before | test_mass::test_remind_three_times_per_24h, ::test_remind_cap_is_a_rule |
| A9 employee confirmation | before | test_mass::test_create_with_sender_fail_list_and_pending_task, test_moments::test_skip_and_auto_publish |
| A10 transfer acceptance after 24 h / refusal | before | test_transfers::test_waiting_then_taken_over_after_24h, ::test_refuse_within_24h |
| A11 on-job ≤ 2 per 90 days; resigned within a year | before | test_transfers::test_at_most_two_onjob_transfers_in_90_days, ::test_resigned_flow |
| A12 takeover capacity → status 4 | before | test_transfers::test_takeover_at_capacity_is_status_4 |
| A13 ≤ 100 customers per transfer call | before | test_transfers::test_per_customer_errcodes |
| A14 group size 500 | before | test_groups::test_group_size_limit, ::test_join_way_rotates_and_auto_creates |
| A15 join way chat_id_list ≤ 5 | before; now counted as sent | test_groups::test_join_way_validation, here test_a15_join_way_at_most_5_chat_ids |
| A16 state ≤ 30 characters | before | test_contact_ways::test_field_rules |
| A17 corp tags 3,000, names ≤ 30 | before | test_tags::test_corp_tag_cap, ::test_add_errors |
| A18 API contact ways 500,000 (41045), temporary 100,000 a day | before | test_contact_ways::test_cap_counts_contact_and_join_ways, ::test_temporary_way_daily_cap |
| A19 group welcome templates 100 (41055), creator only (41058) | before | test_welcome::test_group_welcome_template_cap, ::test_group_welcome_template_other_app_41058 |
| A20 temporary media valid 3 days (40007) | before | test_media::test_get_unknown_missing_and_expired, test_mass::test_expired_media_is_40007 |
| A21 frequency per corp per API 10,000/min, 150,000/h; 45033 | before | test_framework::test_per_minute_frequency_limit_45009_and_block, ::test_per_hour_frequency_limit_45009, ::test_concurrency_limit_45033 |
| A21 frequency per IP 20,000/min, 600,000/h | n/a | one corp per emulator: its per-corp limit (lower) always binds first |
| A22 not a friend → 84061 / send status 2 | before | test_tags::test_mark_tag, test_customers::test_remark_limits, test_mass::test_create_with_sender_fail_list_and_pending_task |
| P1-R1 error envelope HTTP 200 + errcode/errmsg | before | test_framework::test_error_envelope_is_http_200_with_hint |
| P1-R2 token errors 41001/40014/42001/40013/40001 | before | test_framework::test_gettoken_errors, ::test_token_errors_41001_40014_42001 |
| P1-R3 user/list_id limit 1–10000, cursor, a row per (user, dept) | now (tested) | here test_p1_r3_user_list_id_limit_and_paging |
| P1-R4 externalcontact/get pages follow_user beyond 500 | before | test_customers::test_get_follow_user_paging |
| P1-R5 tag types 1/2, add_way set | before | test_customers::test_get_tags_corp_and_personal, ::test_list_and_get_shapes, ::test_add_by_customer_sets_oper_userid |
| P1-R6 batch/get_by_user ≤ 100 users, limit 50/100 | before | test_customers::test_batch_get_by_user_paging_and_limits, ::test_batch_follow_info_shape |
| P1-R7 remark limits | before | test_customers::test_remark_limits, ::test_remark_company_only_for_wechat_customers |
| P1-R8 corp tags cap, names, empty groups | before | test_tags::test_corp_tag_cap, ::test_add_errors, ::test_delete_rules |
| P1-R9 add_corp_tag group_name appends | before | test_tags::test_group_name_appends_and_duplicates_collapse |
| P1-R10 mark_tag corp tags only | before | test_tags::test_mark_tag |
| P1-R11 contact way type/scene/style codes, remark/state ≤ 30 | before | test_contact_ways::test_type_and_scene_errors, ::test_field_rules |
| P1-R12 config_id 41043/41044, cap 41045, users 41041 | before | test_contact_ways::test_update_and_delete, ::test_cap_counts_contact_and_join_ways, ::test_field_rules |
| P1-R13 temporary ways | before | test_contact_ways::test_temporary_ways, ::test_temporary_way_expires, ::test_temporary_way_daily_cap |
| P1-R14 list_contact_way window and limit | before | test_contact_ways::test_list_contact_way |
| P1-R15 update replaces user/party and join-way config | before | test_contact_ways::test_update_and_delete, test_groups::test_join_way_keeps_at_most_five_chats |
| P1-R16 welcome_code | before | test_welcome::test_welcome_code_single_use_and_20s_window, ::test_welcome_code_void_after_chat_or_readd |
| P1-R17 welcome content ≤ 4000 bytes, ≤ 9 attachments | before | test_welcome::test_welcome_content_rules |
| P1-R18 group welcome templates | before | test_welcome::test_group_welcome_template_cap, ::test_group_welcome_template_other_app_41058, ::test_group_welcome_template_crud |
| P1-R19 groupchat/list limit, owner_filter ≤ 100, 81017 | before | test_groups::test_list_limits, ::test_list_81017_when_visibility_too_large |
| P1-R20 groupchat/get fields | before | test_groups::test_get_fields |
| P1-R21 join way scene, chat_id_list ≤ 5, remark truncated, room_base_name ≤ 40 | before; now counted as sent | test_groups::test_join_way_validation, here test_a15_join_way_at_most_5_chat_ids |
| P1-R22 id shapes wm/wo, et, wr | now (tested) | here test_p1_r22_ids_have_wecom_shapes |
| P2-R1 add_msg_template ≤ 10,000 ids, ≤ 2,000 chats, ≤ 9 attachments | before; now counted as sent | test_mass::test_group_chat_list_limit, ::test_content_rules, here test_a4_add_msg_template_at_most_10000_external_userid, here test_p2_r1_at_most_2000_chat_ids |
| P2-R2 task only until confirmed; statuses | before | test_mass::test_confirm_sets_statuses_1_2_3 |
| P2-R3 receive quota modes | before | test_mass::test_fixed_quota_modes, ::test_days_in_month_is_the_default |
| P2-R4 remind ≤ 3 / 24 h | before | test_mass::test_remind_three_times_per_24h |
| P2-R5 groupmsg list span and limits | before | test_mass::test_groupmsg_list_span_at_most_a_month, ::test_task_and_result_paging |
| P2-R6 add_moment_task content rules, jobid 24 h | before | test_moments::test_attachment_rules, ::test_jobid_valid_24h, ::test_job_goes_1_2_3 |
| P2-R6 video ≤ 30 s | n/a | the emulator does not decode video; sizes are enforced |
| P2-R7 moment list span/limits | before | test_moments::test_moment_list_span_limit_and_filters, ::test_send_result_limit_and_paging, ::test_task_errors_and_paging |
| P2-R8 cancel never retracts | before | test_moments::test_cancel_keeps_published_posts, test_mass::test_cancel_stops_the_remaining_tasks |
| P2-R9 Moments visibility quota (unverified, off) | before | test_moments::test_moment_caps_leave_customers_out |
| P2-R10 transfer ≤ 100, success msg ≤ 200, auto-accept | before | test_transfers::test_per_customer_errcodes, ::test_call_level_errors, ::test_waiting_then_taken_over_after_24h |
| P2-R11 on-job 40128/40130/40131/40129, status 4 | before | test_transfers::test_per_customer_errcodes, ::test_at_most_two_onjob_transfers_in_90_days, ::test_takeover_at_capacity_is_status_4 |
| P2-R12 resigned 40097; unassigned page_size ≤ 1000 | before | test_transfers::test_resigned_flow, ::test_unassigned_list_legacy_paging |
| P2-R13 group transfers 1–100, 300 a day, 2 per 90 days, 90500 | before | test_transfers::test_resigned_group_transfer, ::test_onjob_group_transfer_rules, ::test_group_transfer_daily_cap |
| P2-R14 transfer_fail callback | before | test_transfers::test_refuse_within_24h, ::test_takeover_at_capacity_is_status_4 |
| P2-R15 behaviour data ids ≤ 100, 30 days, 180 days | before | test_stats::test_behavior_request_rules, ::test_group_statistic_rules |
| P2-R16 message/send limits, 81013, 30/min 1000/h dropped | before | test_messages::test_recipient_list_limits, ::test_partially_and_wholly_invalid_recipients, ::test_per_member_rate_limit_drops_silently, ::test_hourly_limit |
| P2-R17 media sizes, > 5 B, 3 days | before | test_media::test_default_size_limits_45001, ::test_five_bytes_or_less_40006, ::test_get_unknown_missing_and_expired |
| P2-R18 uploadimg 1,000/day, 3,000/month | before | test_media::test_uploadimg_and_quotas |
| P3-F1 per corp per API 10,000/min, 150,000/h; block 60 s / 60 min | before | test_framework::test_per_minute_frequency_limit_45009_and_block, ::test_per_hour_frequency_limit_45009 |
| P3-F2 per IP; third-party per IP | n/a | one corp per emulator (per-corp binds first); no third-party apps |
| P3-F3 app message per member 30/min, 1,000/h, dropped | before | test_messages::test_default_rate_limit_30_per_minute, ::test_hourly_limit |
| P3-F4 create accounts, apps, trusted domains, getcheckindata, appchat | n/a | those APIs are not emulated (Siyu does not call them) |
| P3-F5 jsapi_ticket 400/h corp, 100/h app | n/a | JS-SDK tickets are not emulated |
| P3-F6 upload image 1,000/day, 3,000/month | before | test_media::test_uploadimg_and_quotas |
| P3-F7 gettoken blocked after 2,000 errors an hour; debug=1 5/min | n/a | WeCom staff answers, not the docs; debug mode is not emulated |
| P3-F8 45033 concurrency (no published number) | before | test_framework::test_concurrency_limit_45033 |
| P4-R1 login/OAuth code ≤ 512 B, single use, 5 minutes → 40029 | now (issue 18) | test_identity::test_oauth_in_the_client_is_silent_and_the_code_single_use, ::test_code_needs_the_apps_token_and_expires_after_5_minutes |
| P4-R2 the app's token for auth/getuserinfo (50001) | now (issue 18) | test_identity::test_code_needs_the_apps_token_and_expires_after_5_minutes |
| P4-R3–R5 web login → userid; privateinfo with agentid → user_ticket; without agentid = base; getuserdetail, 84090 | now (issue 18) | test_identity::test_privateinfo_asks_consent_and_gives_a_user_ticket, ::test_web_login_scan_confirm_and_cancel |
| P4-R6 legacy user/getuserinfo spelling | now (issue 18) | test_identity::test_code_needs_the_apps_token_and_expires_after_5_minutes |
| P4-R7 state ≤ 128 B [a-zA-Z0-9]; refusal → no code; untrusted redirect → error page | now (issue 18) | test_identity::test_bad_authorize_requests_get_an_error_page_and_no_code, ::test_privateinfo_asks_consent_and_gives_a_user_ticket |
| P4-R8 jsapi tickets: 7200 s, same while valid, app ticket needs the app, ≤ 100/h per app → 45009 | now (issue 18) | test_identity::test_tickets_same_while_valid_app_ticket_needs_the_app, ::test_ticket_fetches_are_limited_per_hour |
| P4-R9 signature over the page URL without fragment; 40093, 42012, 80001, 40013 | now (issue 18) | test_identity::test_official_signature_vector, ::test_registration_is_checked_like_the_client |
| P4-R10, R11 toolbar APIs need app identity and the entry; ids usable server-side | now (issue 18) | test_identity::test_chat_toolbar_apis, ::test_group_chat_context |
| P4-R12, R13 share* limits (text, attachments) | now (issue 18) | test_identity::test_chat_toolbar_apis |
| P4-R14 openEnterpriseChat group caps | n/a | the emulated client has no "start a group chat" |
| P4-R17–R19, R21–R24 (template-card updates, 获客助手) | n/a | those APIs are not emulated |
| P4-R15 message/send limits | before | as P2-R16 |
| P4-R16 duplicate check 1800 s | before | test_messages::test_duplicate_check |
| P4-R20 recall within 24 h | before | test_messages::test_recall |
| P5-R1–R26 (微信客服, 会话存档, intercept rules) | n/a | those APIs are not emulated |
"""

from __future__ import annotations

import re

from tests.sim.helpers import customers_of, employee, uid


def add_msg_template(sim, **body) -> dict:
    return sim.call("externalcontact/add_msg_template", body)


def group(sim, owner: str) -> str:
    return sim.control("group/create", {"owner": owner, "name": uid("审计群")})["chat_id"]


def test_a4_add_msg_template_at_most_10000_external_userid(sim):
    """wecom-api.md §5 "recipients per add_msg_template: ≤ 10,000 external_userid → 40058-style
    invalid parameter (unverified code)"; part 2 R1. The list counts as sent: the doc is silent on
    repeats, so 10,001 entries are refused even when two are the same."""
    ids = [f"wmAudit{i:06d}" for i in range(10000)]
    assert add_msg_template(sim, external_userid=ids + ids[:1], text={"content": "x"})["errcode"] == 40058
    # exactly 10,000 is a valid request; none is anyone's customer → 41048
    assert add_msg_template(sim, external_userid=ids, text={"content": "x"})["errcode"] == 41048


def test_p2_r1_at_most_2000_chat_ids(sim):
    """part 2 R1 "add_msg_template: chat_id_list ≤ 2 000", counted as sent."""
    owner = employee(sim)
    chat = group(sim, owner)
    body = {"chat_type": "group", "sender": owner, "text": {"content": "x"}}
    assert add_msg_template(sim, chat_id_list=[chat] * 2001, **body)["errcode"] == 40058
    assert add_msg_template(sim, chat_id_list=[chat] * 2000, **body)["errcode"] == 0


def test_a15_join_way_at_most_5_chat_ids(sim):
    """wecom-api.md §5 "join way: chat_id_list ≤ 5 → invalid parameter"; part 1 R21 (add_join_way doc
    92229). Counted as sent (the doc is silent on repeats); update_join_way checks the same."""
    owner = employee(sim)
    chats = [group(sim, owner) for _ in range(5)]

    def add(ids):
        return sim.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": ids})

    assert add(chats + chats[:1])["errcode"] == 40058
    r = add(chats)
    assert r["errcode"] == 0
    upd = sim.call(
        "externalcontact/groupchat/update_join_way",
        {"config_id": r["config_id"], "scene": 2, "chat_id_list": [*chats, chats[0]]},
    )
    assert upd["errcode"] == 40058


def test_p1_r3_user_list_id_limit_and_paging(sim):
    """part 1 R3 "user/list_id limit 1–10000, cursor paging, one row per (user, dept)" (doc 96067)."""
    depts = [d["id"] for d in sim.control("world/sample", {"n": 1})["departments"]][:2]
    e = employee(sim, department=depts)  # two rows for this member when the world has two departments
    for bad in (0, 10001, "5"):
        assert sim.call("user/list_id", {"limit": bad})["errcode"] == 40058
    rows, cursor = [], ""
    while True:
        r = sim.call("user/list_id", {"limit": 7, "cursor": cursor})
        assert r["errcode"] == 0 and len(r["dept_user"]) <= 7
        rows += r["dept_user"]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert rows == sim.call("user/list_id", {})["dept_user"]  # paging loses and repeats nothing
    mine = sorted(row["department"] for row in rows if row["userid"] == e)
    assert mine == sorted(sim.get("user/get", userid=e)["department"])


def test_p1_r22_ids_have_wecom_shapes(sim):
    """part 1 R22 "ids are opaque strings; samples use wm/wo (customers), et (tags), wr (chats)"
    (prefix semantics unverified: the emulator generates the same shapes)."""
    e = employee(sim)
    [x] = customers_of(sim, e, 1)
    assert re.fullmatch(r"w[mo][A-Za-z0-9_-]{10,}", x)
    chat = group(sim, e)
    assert chat.startswith("wr")
    tag_group = sim.call("externalcontact/add_corp_tag", {"group_name": uid("审计"), "tag": [{"name": "a"}]})
    assert tag_group["tag_group"]["group_id"].startswith("et") and tag_group["tag_group"]["tag"][0]["id"].startswith(
        "et"
    )


def test_the_table_names_tests_that_exist():
    """Every test the table above refers to exists (the table must not drift from the suite)."""
    import ast
    from pathlib import Path

    here = Path(__file__).parent
    defined: dict[str, set[str]] = {}
    for path in here.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined[path.stem] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = []
    for row in __doc__.splitlines():
        if not row.startswith("| ") or row.startswith("| rule"):
            continue
        module = None
        for m in re.finditer(r"(?:(test_\w+)::|::|here )(test_\w+)", row):
            module = m.group(1) or (module if m.group(0).startswith("::") else "test_rules_audit")
            if m.group(2) not in defined.get(module, ()):
                missing.append(f"{module}::{m.group(2)}")
    assert not missing, missing
