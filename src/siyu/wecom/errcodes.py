"""Meanings of the WeCom errcodes an SCRM meets, for the console (接口日志, test connection).

Source: the 全局错误码 table in /work/shared/domain/wecom-api/part3-callbacks-errors.md §3.2
(LinkWeChat ``WeErrorCodeEnum``, a copy of the official page). Each code also has a lookup
page at ``https://open.work.weixin.qq.com/devtool/query?e=<errcode>``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

MEANINGS = {
    -1: _("系统繁忙"),
    0: _("请求成功"),
    40001: _("不合法的secret参数"),
    40003: _("无效的UserID"),
    40013: _("不合法的CorpID"),
    40014: _("不合法的access_token"),
    40056: _("不合法的agentid"),
    40058: _("不合法的参数"),
    40068: _("不合法的标签ID"),
    40096: _("不合法的外部联系人 ID"),
    40097: _("该成员尚未离职"),
    40098: _("成员尚未实名认证"),
    40099: _("外部联系人的数量已达上限"),
    40100: _("此用户的外部联系人已经在转移流程中"),
    40126: _("企业标签个数达到上限，最多为3000个"),
    40128: _("客户转接过于频繁(90天内只允许转接一次，同一个客户最多只能转接两次)"),
    40129: _("当前客户正在转接中"),
    40130: _("原跟进人与接手人一样，不可继承"),
    40131: _("原跟进成员并不是该客户的跟进人"),
    41001: _("缺少access_token参数"),
    41002: _("缺少corpid参数"),
    41004: _("缺少secret参数"),
    41035: _("缺少外部联系人 ID 参数"),
    41041: _("「联系我」使用人数超过限制"),
    41044: _("无效的「联系我」config_id参数"),
    41045: _("API添加「联系我」达到数量上限"),
    41048: _("无可发送的客户"),
    41049: _("缺少欢迎语code参数"),
    41050: _("无效的欢迎语code"),
    41051: _("客户和服务人员已经开始聊天了"),
    41056: _("外部联系人id类型不正确"),
    41063: _("群发消息正在被派发中，请稍后再试"),
    42001: _("access_token已过期"),
    45009: _("接口调用超过限制"),
    45033: _("接口并发调用超过限制"),
    47001: _("数据格式错误"),
    48002: _("API接口无权限调用"),
    60011: _("指定的成员/部门/标签参数无权限"),
    60020: _("访问ip不在白名单之中"),
    60111: _("UserID不存在"),
    81013: _("UserID、部门ID、标签ID全部非法或无权限"),
    84061: _("不存在外部联系人的关系"),
    84074: _("没有外部联系人权限"),
    86001: _("参数 chatid 不合法"),
    90206: _("小程序未关联到企业中"),
    90500: _("群主并未离职"),
    90501: _("该群不是客户群"),
    90502: _("群主已经离职"),
    90504: _("群主没变"),
    90507: _("离职群正在继承处理中"),
    90508: _("离职群已经继承"),
}

# The short table printed under the API log: the codes operators most often have to act on.
COMMON = (45009, 45033, -1, 40014, 42001, 40001, 40013, 48002, 60020, 60011, 84061, 84074, 40096, 41050, 40068)


def meaning(errcode: int | None) -> str:
    if errcode is None:
        return str(_("无响应（网络错误或非 JSON 应答）"))
    text = MEANINGS.get(errcode)
    return str(text) if text is not None else ""


def lookup_url(errcode: int | None) -> str:
    return f"https://open.work.weixin.qq.com/devtool/query?e={errcode}" if errcode not in (None, 0) else ""


def common_table() -> list[tuple[int, str]]:
    return [(code, str(MEANINGS[code])) for code in COMMON]
