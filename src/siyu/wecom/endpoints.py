"""The customer-contact endpoints wechatpy 2.0 lacks, as thin methods in wechatpy's own style.

Each method is one WeCom endpoint: the path, the request fields as the official doc names them,
and the JSON answer returned as-is (``errcode`` already checked by the client).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import WeChatClientException
from wechatpy.work.client.api.external_contact import WeChatExternalContact
from wechatpy.work.client.api.external_contact_group_chat import WeChatExternalContactGroupChat

# a WeCom request or answer body (JSON object)
JSON = dict[str, Any]


def _clean(data: JSON) -> JSON:
    return {k: v for k, v in data.items() if v is not None}


class _TypedAnswers(BaseWeChatAPI):  # type: ignore[misc]  # wechatpy has no types
    """wechatpy's ``_post``/``_get``, with the answer typed (its ``errcode`` checked by the client)."""

    def _post(self, url: str, **kwargs: Any) -> JSON:
        answer: JSON = super()._post(url, **kwargs)
        return answer

    def _get(self, url: str, **kwargs: Any) -> JSON:
        answer: JSON = super()._get(url, **kwargs)
        return answer


class ExternalContactAPI(_TypedAnswers, WeChatExternalContact):  # type: ignore[misc]
    # --- customers -----------------------------------------------------------------------------
    def batch_get_by_users(self, userid_list: list[str], cursor: str = "", limit: int = 100) -> JSON:
        """batch/get_by_user with ``userid_list`` (≤ 100), as the current doc 92994 defines it."""
        return self._post(
            "externalcontact/batch/get_by_user", data={"userid_list": userid_list, "cursor": cursor, "limit": limit}
        )

    def followed_by(self, userid: str) -> list[str]:
        """externalcontact/list: the customers ``userid`` follows in WeCom's own view (contract
        part 1 §2.2); an employee with none answers 84061, which is an empty list here."""
        try:
            res = self._get("externalcontact/list", params={"userid": userid})
        except WeChatClientException as e:
            if getattr(e, "errcode", None) == 84061:
                return []
            raise
        return [str(x) for x in res.get("external_userid") or []]

    def get_detail(self, external_userid: str, cursor: str = "") -> JSON:
        """externalcontact/get with follow_user paging (``cursor``) beyond 500 followers."""
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return self._get("externalcontact/get", params=params)

    def remark(
        self,
        userid: str,
        external_userid: str,
        remark: str | None = None,
        description: str | None = None,
        remark_company: str | None = None,
        remark_mobiles: list[str] | None = None,
        remark_pic_mediaid: str | None = None,
    ) -> JSON:
        return self._post(
            "externalcontact/remark",
            data=_clean(
                {
                    "userid": userid,
                    "external_userid": external_userid,
                    "remark": remark,
                    "description": description,
                    "remark_company": remark_company,
                    "remark_mobiles": remark_mobiles,
                    "remark_pic_mediaid": remark_pic_mediaid,
                }
            ),
        )

    def get_corp_tags(self, tag_id: list[str] | None = None, group_id: list[str] | None = None) -> JSON:
        return self._post("externalcontact/get_corp_tag_list", data=_clean({"tag_id": tag_id, "group_id": group_id}))

    # --- contact ways ----------------------------------------------------------------------------
    def add_contact_way_raw(self, body: JSON) -> JSON:
        return self._post("externalcontact/add_contact_way", data=body)

    def update_contact_way_raw(self, body: JSON) -> JSON:
        return self._post("externalcontact/update_contact_way", data=body)

    def send_welcome_msg_raw(self, body: JSON) -> JSON:
        """send_welcome_msg (doc 92137): welcome_code, text, attachments (≤ 9)."""
        return self._post("externalcontact/send_welcome_msg", data=body)

    def list_contact_way(
        self, start_time: int | None = None, end_time: int | None = None, cursor: str = "", limit: int = 100
    ) -> JSON:
        return self._post(
            "externalcontact/list_contact_way",
            data=_clean({"start_time": start_time, "end_time": end_time, "cursor": cursor or None, "limit": limit}),
        )

    def close_temp_chat(self, userid: str, external_userid: str) -> JSON:
        return self._post(
            "externalcontact/close_temp_chat", data={"userid": userid, "external_userid": external_userid}
        )

    # --- mass messages (企业群发) -----------------------------------------------------------------
    def get_groupmsg_list_v2(
        self,
        chat_type: str,
        start_time: int,
        end_time: int,
        creator: str | None = None,
        filter_type: int = 2,
        limit: int = 100,
        cursor: str = "",
    ) -> JSON:
        return self._post(
            "externalcontact/get_groupmsg_list_v2",
            data=_clean(
                {
                    "chat_type": chat_type,
                    "start_time": start_time,
                    "end_time": end_time,
                    "creator": creator,
                    "filter_type": filter_type,
                    "limit": limit,
                    "cursor": cursor or None,
                }
            ),
        )

    def get_groupmsg_task(self, msgid: str, limit: int = 1000, cursor: str = "") -> JSON:
        return self._post(
            "externalcontact/get_groupmsg_task", data=_clean({"msgid": msgid, "limit": limit, "cursor": cursor or None})
        )

    def get_groupmsg_send_result(self, msgid: str, userid: str, limit: int = 1000, cursor: str = "") -> JSON:
        return self._post(
            "externalcontact/get_groupmsg_send_result",
            data=_clean({"msgid": msgid, "userid": userid, "limit": limit, "cursor": cursor or None}),
        )

    def remind_groupmsg_send(self, msgid: str) -> JSON:
        return self._post("externalcontact/remind_groupmsg_send", data={"msgid": msgid})

    def cancel_groupmsg_send(self, msgid: str) -> JSON:
        return self._post("externalcontact/cancel_groupmsg_send", data={"msgid": msgid})

    # --- Moments (客户朋友圈) ------------------------------------------------------------------------
    def add_moment_task(
        self, text: JSON | None = None, attachments: list[JSON] | None = None, visible_range: JSON | None = None
    ) -> JSON:
        return self._post(
            "externalcontact/add_moment_task",
            data=_clean({"text": text, "attachments": attachments, "visible_range": visible_range}),
        )

    def get_moment_task_result(self, jobid: str) -> JSON:
        return self._get("externalcontact/get_moment_task_result", params={"jobid": jobid})

    def get_moment_list(
        self,
        start_time: int,
        end_time: int,
        creator: str | None = None,
        filter_type: int = 2,
        cursor: str = "",
        limit: int = 20,
    ) -> JSON:
        return self._post(
            "externalcontact/get_moment_list",
            data=_clean(
                {
                    "start_time": start_time,
                    "end_time": end_time,
                    "creator": creator,
                    "filter_type": filter_type,
                    "cursor": cursor or None,
                    "limit": limit,
                }
            ),
        )

    def get_moment_task(self, moment_id: str, cursor: str = "", limit: int = 1000) -> JSON:
        return self._post(
            "externalcontact/get_moment_task",
            data=_clean({"moment_id": moment_id, "cursor": cursor or None, "limit": limit}),
        )

    def get_moment_customer_list(self, moment_id: str, userid: str, cursor: str = "", limit: int = 1000) -> JSON:
        return self._post(
            "externalcontact/get_moment_customer_list",
            data=_clean({"moment_id": moment_id, "userid": userid, "cursor": cursor or None, "limit": limit}),
        )

    def get_moment_send_result(self, moment_id: str, userid: str, cursor: str = "", limit: int = 5000) -> JSON:
        return self._post(
            "externalcontact/get_moment_send_result",
            data=_clean({"moment_id": moment_id, "userid": userid, "cursor": cursor or None, "limit": limit}),
        )

    def get_moment_comments(self, moment_id: str, userid: str) -> JSON:
        return self._post("externalcontact/get_moment_comments", data={"moment_id": moment_id, "userid": userid})

    def upload_attachment(self, media_type: str, attachment_type: int, media_file: tuple[str, bytes]) -> JSON:
        """media/upload_attachment (doc 95098): Moments (attachment_type 1) need media from here."""
        return self._post(
            "media/upload_attachment",
            params={"media_type": media_type, "attachment_type": attachment_type},
            files={"media": media_file},
        )

    def cancel_moment_task(self, moment_id: str) -> JSON:
        return self._post("externalcontact/cancel_moment_task", data={"moment_id": moment_id})

    # --- transfers (在职 / 离职继承) -------------------------------------------------------------------
    def transfer_customer(
        self,
        handover_userid: str,
        takeover_userid: str,
        external_userid: list[str],
        transfer_success_msg: str | None = None,
    ) -> JSON:
        return self._post(
            "externalcontact/transfer_customer",
            data=_clean(
                {
                    "handover_userid": handover_userid,
                    "takeover_userid": takeover_userid,
                    "external_userid": external_userid,
                    "transfer_success_msg": transfer_success_msg,
                }
            ),
        )

    def transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> JSON:
        return self._post(
            "externalcontact/transfer_result",
            data=_clean(
                {"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor or None}
            ),
        )

    def resigned_transfer_customer(
        self, handover_userid: str, takeover_userid: str, external_userid: list[str]
    ) -> JSON:
        return self._post(
            "externalcontact/resigned/transfer_customer",
            data={
                "handover_userid": handover_userid,
                "takeover_userid": takeover_userid,
                "external_userid": external_userid,
            },
        )

    def resigned_transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> JSON:
        return self._post(
            "externalcontact/resigned/transfer_result",
            data=_clean(
                {"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor or None}
            ),
        )

    def iter_unassigned(self, page_size: int = 1000) -> Iterator[JSON]:
        cursor = ""
        while True:
            res = self._post(
                "externalcontact/get_unassigned_list", data=_clean({"cursor": cursor or None, "page_size": page_size})
            )
            yield from res.get("info", [])
            cursor = res.get("next_cursor", "")
            if not cursor or res.get("is_last"):
                return

    # --- statistics ------------------------------------------------------------------------------------
    def get_user_behavior(
        self, start_time: int, end_time: int, userid: list[str] | None = None, partyid: list[int] | None = None
    ) -> JSON:
        return self._post(
            "externalcontact/get_user_behavior_data",
            data=_clean({"userid": userid, "partyid": partyid, "start_time": start_time, "end_time": end_time}),
        )


class ExternalContactGroupChatAPI(_TypedAnswers, WeChatExternalContactGroupChat):  # type: ignore[misc]
    def list_page(
        self, status_filter: int = 0, owner_userids: list[str] | None = None, cursor: str = "", limit: int = 1000
    ) -> JSON:
        data: JSON = {"status_filter": status_filter, "limit": limit}
        if owner_userids:
            data["owner_filter"] = {"userid_list": owner_userids}
        if cursor:
            data["cursor"] = cursor
        return self._post("externalcontact/groupchat/list", data=data)

    def get_detail(self, chat_id: str, need_name: int = 1) -> JSON:
        return self._post("externalcontact/groupchat/get", data={"chat_id": chat_id, "need_name": need_name})

    def add_join_way(self, body: JSON) -> JSON:
        return self._post("externalcontact/groupchat/add_join_way", data=body)

    def get_join_way(self, config_id: str) -> JSON:
        return self._post("externalcontact/groupchat/get_join_way", data={"config_id": config_id})

    def update_join_way(self, body: JSON) -> JSON:
        return self._post("externalcontact/groupchat/update_join_way", data=body)

    def del_join_way(self, config_id: str) -> JSON:
        return self._post("externalcontact/groupchat/del_join_way", data={"config_id": config_id})

    def transfer_resigned(self, chat_id_list: list[str], new_owner: str) -> JSON:
        return self._post(
            "externalcontact/groupchat/transfer", data={"chat_id_list": chat_id_list, "new_owner": new_owner}
        )

    def transfer_onjob(self, chat_id_list: list[str], new_owner: str) -> JSON:
        return self._post(
            "externalcontact/groupchat/onjob_transfer", data={"chat_id_list": chat_id_list, "new_owner": new_owner}
        )

    def statistic_by_day(self, day_begin_time: int, day_end_time: int, owner_userids: list[str]) -> JSON:
        return self._post(
            "externalcontact/groupchat/statistic_group_by_day",
            data={
                "day_begin_time": day_begin_time,
                "day_end_time": day_end_time,
                "owner_filter": {"userid_list": owner_userids},
            },
        )
