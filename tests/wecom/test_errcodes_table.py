"""The one table of WeCom errcodes for the console (issue 16 item 5): every code has a meaning
and an action in Chinese words, no raw WeCom field names, and the raw code stays out of them."""

from __future__ import annotations

import re

from siyu.wecom import errcodes

RAW = (
    "external_userid",
    "userid",
    "handover_userid",
    "takeover_userid",
    "chat_id",
    "config_id",
    "errcode",
    "access_token",
)


def test_every_code_has_meaning_and_action_in_words():
    assert len(errcodes.TABLE) > 60
    for code, e in errcodes.TABLE.items():
        meaning, action = str(e.meaning), str(e.action)
        assert meaning and action, code
        assert re.search(r"[\u4e00-\u9fff]", meaning) and re.search(r"[\u4e00-\u9fff]", action), code
        assert not any(r in meaning.lower() or r in action.lower() for r in RAW), code
        assert str(code) not in meaning + action


def test_transfer_refusals_of_the_issue_are_explained():
    e = errcodes.explain(40131)
    assert "跟进人" in e["meaning"] and "同步" in e["action"] and e["code"] == 40131
    assert "handover_userid" not in errcodes.sentence(40131)


def test_unknown_and_missing_codes_still_get_words():
    e = errcodes.explain(987654)
    assert e["meaning"] == "企业微信返回了未收录的错误" and e["lookup"].endswith("987654")
    assert errcodes.meaning(None).startswith("企业微信无响应")
    assert errcodes.code_in("WeCom externalcontact/add_msg_template: errcode 41048, no customer") == 41048
    assert errcodes.code_in("boom") is None


def test_explain_error_reads_the_exception_code():
    class Boom(Exception):
        errcode = 45009

    assert errcodes.explain_error(Boom()).startswith("接口调用次数超过企业微信限制")


def test_stored_errors_in_words_only_when_they_name_a_code():
    stored = "WeComAPIError: WeCom externalcontact/list: errcode 60011, no privilege"
    assert errcodes.stored_sentence(stored).startswith("应用无权访问该员工/部门/标签")
    assert errcodes.stored_sentence("41044: invalid config_id").startswith("渠道活码在企业微信中已不存在")
    assert errcodes.stored_sentence("OperationalError: database is locked") == ""
    assert errcodes.stored_sentence("") == ""
