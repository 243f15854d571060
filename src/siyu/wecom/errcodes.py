"""One table of the WeCom errcodes that can reach the console: what each means and what to do,
in words an operator understands (the raw code is shown only as secondary grey text).

Source: the 全局错误码 table in /work/shared/domain/wecom-api/part3-callbacks-errors.md §3.2
(LinkWeChat ``WeErrorCodeEnum``, a copy of the official page) and the per-API errcodes of
part 2 (mass messages, Moments, transfers, media). Each code also has a lookup page at
``https://open.work.weixin.qq.com/devtool/query?e=<errcode>``.

Used by: broadcasts (failed calls, action errors), transfers (per-customer refusals), channels and
tags (write errors), settings' test connection, the API log.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

_RETRY = _("稍后重试；系统会自动退避重试，频繁出现请减少同时进行的任务。")
_SETTINGS = _("请管理员在「企业微信」设置页核对配置后点「测试连接」。")
_RESYNC = _("请在「数据同步」页重新同步后再操作。")
_SUPPORT = _("请查看接口日志中的详细信息，必要时联系管理员。")


class Entry(NamedTuple):
    meaning: str | Promise
    action: str | Promise


E = Entry
TABLE: dict[int, Entry] = {
    -1: E(_("企业微信系统繁忙"), _RETRY),
    0: E(_("请求成功"), _("无需处理。")),
    40001: E(_("应用密钥（Secret）不正确"), _SETTINGS),
    40003: E(_("员工账号无效"), format_lazy("{}{}", _("该员工可能已被删除或账号已变更，"), _RESYNC)),
    40004: E(_("不支持的媒体文件类型"), _("请换用图片（JPG/PNG）、视频（MP4）或普通文件。")),
    40005: E(_("媒体类型参数不正确"), _("请重新上传附件。")),
    40006: E(_("文件大小不符合要求"), _("图片不超过 2MB、视频不超过 10MB、文件不超过 20MB，且大于 5 字节。")),
    40007: E(_("素材已过期或不存在"), _("企业微信的素材只保留 3 天：请重新上传附件后再发送。")),
    40009: E(_("图片大小不符合要求"), _("请上传不超过 2MB 的 JPG/PNG 图片。")),
    40011: E(_("视频大小不符合要求"), _("请上传不超过 10MB 的 MP4 视频。")),
    40013: E(_("企业 ID（CorpID）不正确"), _SETTINGS),
    40014: E(_("访问凭证无效"), _("系统会自动重新获取凭证；持续出现请检查应用密钥。")),
    40056: E(_("应用 ID（AgentId）不正确"), _SETTINGS),
    40058: E(_("请求参数不正确"), _SUPPORT),
    40068: E(_("客户标签不存在或已被删除"), _("请在「客户标签」页同步标签后重新选择。")),
    40096: E(_("客户 ID 无效"), format_lazy("{}{}", _("该客户可能已不存在，"), _RESYNC)),
    40097: E(_("该员工尚未离职"), _("离职继承只能用于已离职员工；在职员工请用「在职继承」。")),
    40098: E(_("接替员工尚未实名认证"), _("请接替员工在企业微信中完成实名认证后再分配。")),
    40099: E(_("接替员工的客户数已达上限"), _("请换一位客户较少的接替员工。")),
    40100: E(_("该员工的客户已在转接流程中"), _("请等待当前转接完成（最长 24 小时）后再操作。")),
    40123: E(_("图片格式不正确"), _("请上传 JPG 或 PNG 图片。")),
    40126: E(_("企业标签数已达上限（最多 3000 个）"), _("请先删除不再使用的标签。")),
    40128: E(
        _("该客户转接过于频繁（90 天内最多转接 2 次）"),
        _("该客户暂时不能再转接，请 90 天后再试，或由原员工继续跟进。"),
    ),
    40129: E(_("该客户正在转接中"), _("请等待客户接受或 24 小时后自动接替，无需重复提交。")),
    40130: E(_("原跟进员工与接替员工是同一人"), _("请选择另一位接替员工。")),
    40131: E(
        _("原跟进员工已不是该客户的跟进人"),
        format_lazy("{}{}", _("客户可能已删除该员工或已被转走，企业微信不会转接："), _RESYNC),
    ),
    41001: E(_("缺少访问凭证"), _SETTINGS),
    41002: E(_("缺少企业 ID"), _SETTINGS),
    41004: E(_("缺少应用密钥"), _SETTINGS),
    41035: E(_("缺少客户 ID"), _SUPPORT),
    41041: E(_("「联系我」使用员工数超过限制"), _("单人活码只能选 1 人，多人活码最多 100 人：请减少员工。")),
    41044: E(_("渠道活码在企业微信中已不存在"), _("请删除该活码后重新创建。")),
    41045: E(_("通过接口创建的「联系我」已达上限（5 万个）"), _("请删除不再使用的渠道活码。")),
    41046: E(_("缺少群发消息 ID"), _SUPPORT),
    41047: E(_("群发消息在企业微信中不存在"), _("该群发可能已被取消或删除，无需再操作。")),
    41048: E(_("没有可发送的客户"), _("所选客户都已不是该员工的好友或已达接收上限，请调整受众。")),
    41049: E(_("缺少欢迎语凭证"), _SUPPORT),
    41050: E(_("欢迎语凭证已失效"), _("欢迎语须在客户添加后 20 秒内发送，超时后无法补发。")),
    41051: E(_("客户已与员工开始聊天，不能再发欢迎语"), _("无需处理。")),
    41056: E(_("客户 ID 类型不正确"), _SUPPORT),
    41063: E(_("群发消息正在派发中"), _("请稍后再试（系统会自动重试）。")),
    41064: E(_("附件大小超过限制"), _("请压缩或更换附件后重试。")),
    41065: E(_("附件类型不支持"), _("朋友圈只能发图片（最多 9 张）、1 个视频或 1 个链接。")),
    41072: E(_("附件的使用场景不正确"), _("请重新上传附件后再发送（朋友圈附件需单独上传）。")),
    42001: E(_("访问凭证已过期"), _("系统会自动重新获取凭证，无需处理。")),
    44001: E(_("上传的文件为空"), _("请选择有内容的文件。")),
    44004: E(_("消息内容为空"), _("请填写文本或添加附件。")),
    45001: E(_("文件太大"), _("请压缩后重新上传。")),
    45002: E(_("消息内容太长"), _("请缩短文本（最多 4000 字节）。")),
    45009: E(_("接口调用次数超过企业微信限制"), _RETRY),
    45033: E(_("接口并发调用超过限制"), _RETRY),
    47001: E(_("数据格式错误"), _SUPPORT),
    48002: E(_("应用没有调用该接口的权限"), _("请在企业微信管理后台为该应用开启「客户联系」相关权限。")),
    49008: E(_("客户群已解散"), _("无需处理：该群已不存在。")),
    60011: E(_("应用无权访问该员工/部门/标签"), _("请在企业微信管理后台把相关员工或部门加入应用的可见范围。")),
    60020: E(_("服务器 IP 不在企业微信的可信 IP 名单中"), _("请在企业微信管理后台把本服务器的出口 IP 加入可信 IP。")),
    60111: E(_("员工账号不存在"), format_lazy("{}{}", _("该员工可能已被删除，"), _RESYNC)),
    81013: E(_("所选员工、部门、标签都无效或无权限"), _("请检查应用的可见范围，或同步后重新选择。")),
    84061: E(_("该客户已不是员工的好友"), _("客户已删除员工或被删除，无法操作；同步后该客户会显示为已流失。")),
    84074: E(_("没有客户联系权限"), _("请在企业微信管理后台为该应用或员工开启客户联系功能。")),
    86001: E(_("客户群 ID 无效"), format_lazy("{}{}", _("该群可能已解散，"), _RESYNC)),
    86214: E(_("群发类型不正确"), _SUPPORT),
    90206: E(_("小程序未关联到企业"), _("请先在企业微信管理后台关联该小程序。")),
    90500: E(_("群主尚未离职"), _("离职继承只能转交离职员工的群；在职员工的群请用「在职继承」。")),
    90501: E(_("该群不是客户群"), _("内部群不能转交，无需处理。")),
    90502: E(_("群主已经离职"), _("请改用「离职继承」转交该群。")),
    90503: E(_("群成员已满或需要在客户端确认"), _("请新群主在企业微信客户端中确认。")),
    90504: E(_("新群主与原群主相同"), _("请选择另一位员工作为新群主。")),
    90507: E(_("离职员工的群正在继承中"), _("请等待继承完成，无需重复提交。")),
    90508: E(_("该群已经被继承"), _("无需处理。")),
    90509: E(_("不是企业微信客户群"), _("无需处理。")),
}

# The short table printed under the API log: the codes operators most often have to act on.
COMMON = (45009, 45033, -1, 40014, 42001, 40001, 40013, 48002, 60020, 60011, 84061, 84074, 40096, 41050, 40068)

# the older name: code → meaning
MEANINGS = {code: e.meaning for code, e in TABLE.items()}

_NO_ANSWER = Entry(
    _("企业微信无响应（网络错误或非正常应答）"),
    _("请检查服务器网络；系统会自动重试。"),
)


def meaning(errcode: int | None) -> str:
    if errcode is None:
        return str(_NO_ANSWER.meaning)
    e = TABLE.get(errcode)
    return str(e.meaning) if e is not None else ""


def action(errcode: int | None) -> str:
    """What the operator can do about ``errcode`` ('' for an unknown code)."""
    if errcode is None:
        return str(_NO_ANSWER.action)
    e = TABLE.get(errcode)
    return str(e.action) if e is not None else ""


def explain(errcode: int | None) -> dict[str, Any]:
    """``{"code", "meaning", "action", "lookup"}`` for the console: an unknown code still gets a
    meaning in words (an unlisted WeCom error) and the official lookup page."""
    known = errcode is None or errcode in TABLE
    return {
        "code": errcode,
        "meaning": meaning(errcode) if known else str(_("企业微信返回了未收录的错误")),
        "action": action(errcode) if known else str(_SUPPORT),
        "lookup": lookup_url(errcode),
    }


def sentence(errcode: int | None) -> str:
    """One line in words: meaning and what to do (no raw code)."""
    e = explain(errcode)
    return f"{e['meaning']}。{e['action']}" if e["action"] else str(e["meaning"])


def explain_error(exc: BaseException) -> str:
    """A WeCom call's exception as one line for the operator (its ``errcode`` attribute)."""
    return sentence(getattr(exc, "errcode", None))


_CODE_IN_TEXT = re.compile(r"errcode[\"']?\s*[:=]?\s*(-?\d+)")
_LEADING_CODE = re.compile(r"^\s*(?:[a-z_]+ )?(-?\d{1,6}):")


def code_in(text: str) -> int | None:
    """The errcode a stored error text names (``... errcode 40131, ...`` or ``41044: ...``),
    None if none."""
    m = _CODE_IN_TEXT.search(text or "") or _LEADING_CODE.match(text or "")
    return int(m.group(1)) if m else None


def stored_sentence(text: str) -> str:
    """A stored error text (a WeCom answer kept on a row) in words; '' when it names no errcode
    (not a WeCom answer: the caller shows the text itself)."""
    code = code_in(text or "")
    return sentence(code) if code is not None else ""


def lookup_url(errcode: int | None) -> str:
    return f"https://open.work.weixin.qq.com/devtool/query?e={errcode}" if errcode not in (None, 0) else ""


def common_table() -> list[tuple[int, str]]:
    return [(code, str(TABLE[code].meaning)) for code in COMMON]


def full_table() -> list[dict[str, Any]]:
    """Every listed code with its meaning and action (for the API log's reference table)."""
    return [explain(code) for code in sorted(TABLE) if code != 0]
