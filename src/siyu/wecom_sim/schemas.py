"""Typed schemas of the control API's bodies (``/sim/<action>``): one per action.

Every action declares its schema with ``@action(name, schema=...)``; ``control.view`` validates
the JSON body (plus query parameters) against it before the action runs and answers HTTP 400
``{"ok": false, "error": "..."}`` on a wrong type, an unknown field, an out-of-range number or an
oversize string. The action then receives the validated fields only (those present; ``null``
counts as absent). Domain checks (unknown ids, states) stay in the actions and answer 400 too.

Bounds: strings at most ``TEXT_MAX`` characters unless a field says otherwise, no NUL characters
anywhere (PostgreSQL refuses them), integers within ±2^53 (SQLite and JSON hold them), no NaN
or infinity.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TEXT_MAX = 4000
INT_MAX = 2**53

# Ids of things in the simulated corp (userid, external_userid, chat_id, config_id, msgid, ...).
Ref = Annotated[str, StringConstraints(max_length=128)]
Name = Annotated[str, StringConstraints(max_length=64)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
Int = Annotated[int, Field(ge=-INT_MAX, le=INT_MAX)]
NonNeg = Annotated[int, Field(ge=0, le=INT_MAX)]
Limit = Annotated[int, Field(ge=1, le=100_000)]
Timestamp = Annotated[int, Field(ge=0, le=2**40)]  # emulator time, Unix seconds
Refs = Annotated[list[Ref], Field(max_length=10_000)]
Flag = Annotated[int, Field(ge=0, le=1)]


class Body(BaseModel):
    """A control body: unknown fields are refused (a typo never silently does nothing)."""

    model_config = ConfigDict(extra="forbid", str_max_length=TEXT_MAX, allow_inf_nan=False, hide_input_in_errors=True)


class Empty(Body):
    pass


# --- core (control.py) ---------------------------------------------------------------------------
class Config(Body):
    # The callback URL as saved in the WeCom console: http(s) only ("" clears it). EncodingAESKey:
    # exactly 43 letters and digits (回调配置 doc). The console asks for a Token of letters and digits
    # up to 32; the emulator takes any 1..64 visible characters, so a product's wrong token is an answer
    # of the URL verification (as in WeCom's console), not a refusal here.
    callback_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https?://\S+)?$")] | None = None
    callback_token: Annotated[str, StringConstraints(pattern=r"^\S{1,64}$")] | None = None
    callback_aes_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{43}$")] | None = None
    verify: bool | None = None
    rules: dict[Annotated[str, StringConstraints(max_length=64)], Any] | None = None  # checked by rules.update
    quota_per_min: dict[Annotated[str, StringConstraints(max_length=256)], NonNeg] | None = None


class TimeAdvance(Body):
    seconds: Annotated[float, Field(ge=0, le=10 * 366 * 86400)] = 0


class CallbackList(Body):
    since: NonNeg | None = None
    limit: Limit | None = None


XmlTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
XmlValue = Int | bool | Text | Annotated[list[Text], Field(max_length=10_000)]


class CallbackEmit(Body):
    event: XmlTag
    change_type: Annotated[str, StringConstraints(max_length=64)] | None = None
    fields: dict[XmlTag, XmlValue | None] | None = None
    count: Annotated[int, Field(ge=1, le=10_000)] | None = None


class CallbackIds(Body):
    ids: Annotated[list[NonNeg], Field(max_length=100_000)] | None = None


class ApiLogQuery(Body):
    path: Annotated[str, StringConstraints(max_length=256)] | None = None
    since: NonNeg | None = None
    limit: Limit | None = None


class AppMessages(Body):
    touser: Ref | None = None
    since: Int | None = None
    since_id: NonNeg | None = None
    msgtype: Name | None = None
    include_dropped: bool | None = None
    limit: Limit | None = None


# --- the org (org_control.py) ----------------------------------------------------------------------
class EmployeeFields(Body):
    name: Name | None = None
    department: Annotated[list[NonNeg], Field(max_length=100)] | None = None
    main_department: NonNeg | None = None
    is_leader_in_dept: Annotated[list[Flag], Field(max_length=100)] | None = None
    direct_leader: Annotated[list[Ref], Field(max_length=1)] | None = None
    position: Annotated[str, StringConstraints(max_length=128)] | None = None
    mobile: Annotated[str, StringConstraints(max_length=32)] | None = None
    gender: Literal[0, 1, 2, "0", "1", "2"] | None = None
    email: Name | None = None
    avatar: Annotated[str, StringConstraints(max_length=255)] | None = None
    alias: Name | None = None
    status: Literal[1, 2, 4] | None = None
    contact_enabled: bool | None = None
    customer_cap: NonNeg | None = None
    console_welcome: bool | None = None


class EmployeeCreate(EmployeeFields):
    userid: Ref | None = None


class EmployeeUpdate(EmployeeFields):
    userid: Ref
    new_userid: Ref | None = None


class EmployeeRef(Body):
    userid: Ref


class EmployeeDelete(EmployeeRef):
    purge: bool | None = None


class EmployeeSet(EmployeeRef):
    customer_cap: NonNeg | None = None
    console_welcome: bool | None = None
    contact_enabled: bool | None = None


class DepartmentFields(Body):
    name: Name | None = None
    name_en: Name | None = None
    parentid: Annotated[int, Field(ge=1, le=2**32)] | None = None
    order: Annotated[int, Field(ge=0, lt=2**32)] | None = None


class DepartmentCreate(DepartmentFields):
    id: Annotated[int, Field(ge=2, le=2**32)] | None = None


class DepartmentUpdate(DepartmentFields):
    id: Annotated[int, Field(ge=1, le=2**32)]


class DepartmentRef(Body):
    id: Annotated[int, Field(ge=1, le=2**32)]


class Seed(Body):
    customers: Annotated[int, Field(ge=0, le=5_000_000)] | None = None
    seed: Int | None = None
    demo: bool | None = None


class CustomerNew(Body):
    n: Annotated[int, Field(ge=1, le=10_000)] | None = None
    seed: Int | None = None


class WorldSample(Body):
    n: Annotated[int, Field(ge=1, le=1000)] | None = None


# --- customers (customers.py, contact_ways.py, scans.py) -----------------------------------------------
class Pair(Body):
    userid: Ref
    external_userid: Ref


class AddFriend(Body):
    userid: Ref
    add_way: Annotated[int, Field(ge=0, le=1000)]
    external_userid: Ref | None = None
    name: Name | None = None
    by: Literal["employee", "customer"] | None = None
    oper_userid: Ref | None = None
    at: Timestamp | None = None


class Delete(Pair):
    by: Literal["employee", "customer"] | None = None


class PersonalTag(Body):
    """A personal tag (type 2, no tag_id) as externalcontact/get shows it (doc 92114). The client's
    length limit for personal tags is not documented: 64 characters here."""

    group_name: Name = ""
    tag_name: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CustomerEdit(Pair):
    """What an employee edits in the client. The client's limits are not documented (the API's,
    doc 92115, are checked by externalcontact/remark), so only the generic bounds apply here."""

    remark: Text | None = None
    description: Text | None = None
    remark_corp_name: Text | None = None
    remark_company: Text | None = None
    remark_mobiles: Annotated[list[Annotated[str, StringConstraints(max_length=32)]], Field(max_length=100)] | None = (
        None
    )
    personal_tags: Annotated[list[PersonalTag], Field(max_length=100)] | None = None
    add_tag: Annotated[list[Ref], Field(max_length=3000)] | None = None
    remove_tag: Annotated[list[Ref], Field(max_length=3000)] | None = None


class Scan(Body):
    config_id: Ref
    external_userid: Ref | None = None
    name: Name | None = None
    at: Timestamp | None = None


class ScanMany(Body):
    config_id: Ref
    n: Annotated[int, Field(ge=1, le=1000)] | None = None
    name: Name | None = None
    per_tx: Annotated[int, Field(ge=1, le=50)] | None = None


class WelcomeLog(Body):
    userid: Ref | None = None
    external_userid: Ref | None = None
    config_id: Ref | None = None
    state: Ref | None = None
    since: Int | None = None
    used: bool | None = None
    limit: Limit | None = None


# --- groups (groups.py) ---------------------------------------------------------------------------------
Members = Annotated[list[Ref], Field(max_length=2000)]


class GroupCreate(Body):
    owner: Ref
    name: Text | None = None
    members: Members | None = None
    at: Timestamp | None = None
    notice: Text | None = None
    admin_list: Annotated[list[Ref], Field(max_length=100)] | None = None
    chat_id: Ref | None = None


class GroupJoin(Body):
    chat_id: Ref | None = None
    config_id: Ref | None = None
    join_scene: Literal[1, 2, 3] | None = None
    userid: Ref | None = None
    external_userid: Ref | None = None
    name: Name | None = None
    invitor: Ref | None = None
    group_nickname: Name | None = None


class GroupLeave(Body):
    chat_id: Ref
    userid: Ref | None = None
    external_userid: Ref | None = None
    quit_scene: Literal[0, 1] | None = None


class ChatRef(Body):
    chat_id: Ref


class GroupRename(ChatRef):
    name: Text


class GroupNotice(ChatRef):
    notice: Text


class WorldLive(Body):
    enabled: bool | None = None
    interval_s: Annotated[float, Field(gt=0, le=86400)] | None = None


# --- mass messages and Moments (mass.py, moments.py) ------------------------------------------------------
class MassTask(Body):
    msgid: Ref
    userid: Ref


class PendingTasks(Body):
    userid: Ref | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] | None = None


class MomentTask(Body):
    moment_id: Ref
    userid: Ref


class MassAuto(Body):
    probability: Annotated[float, Field(ge=0, le=1)] | None = None
    delay_s: Annotated[float, Field(ge=0, le=366 * 86400)] | None = None
    seed: Int | None = None


class OwnSend(Body):
    """An employee's own send; ``text`` and ``attachments`` are checked as the WeCom endpoint checks
    them (add_msg_template / add_moment_task) by the action."""

    userid: Ref
    external_userids: Refs | None = None
    text: Text | None = None
    attachments: Annotated[list[dict[str, Any]], Field(max_length=9)] | None = None


class Quota(Body):
    external_userid: Ref | None = None
    chat_id: Ref | None = None
    at: Timestamp | None = None


# --- tags (tags.py) -----------------------------------------------------------------------------------------
class AdminTag(Body):
    name: Text
    order: Annotated[int, Field(ge=0, lt=2**32)] | None = None


class TagsAdminCreate(Body):
    group_id: Ref | None = None
    group_name: Text | None = None
    order: Annotated[int, Field(ge=0, lt=2**32)] | None = None
    tags: Annotated[list[Text | AdminTag], Field(max_length=3000)] | None = None
    tag: Annotated[list[Text | AdminTag], Field(max_length=3000)] | None = None


class TagsAdminUpdate(Body):
    id: Ref
    name: Text | None = None
    order: Annotated[int, Field(ge=0, lt=2**32)] | None = None


class TagsAdminDelete(Body):
    tag_id: Annotated[list[Ref], Field(max_length=3000)] | None = None
    group_id: Annotated[list[Ref], Field(max_length=3000)] | None = None


class TagsAdminShuffle(Body):
    group_id: Ref | None = None
    order: Annotated[list[Ref], Field(max_length=3000)] | None = None


# --- transfers (transfers.py) ----------------------------------------------------------------------------
class TransferRefuse(Body):
    external_userid: Ref


class TransferList(Body):
    external_userid: Ref | None = None
    handover_userid: Ref | None = None
    takeover_userid: Ref | None = None
    kind: Annotated[str, StringConstraints(max_length=8)] | None = None
    status: Annotated[int, Field(ge=0, le=100)] | None = None
    limit: Limit | None = None


# --- validation ------------------------------------------------------------------------------------------
# --- clients & identity (client.py) ----------------------------------------------------------------
class ClientConfig(Body):
    # 可信域名 (host or host:port) and the 聊天工具栏 page the client opens beside a chat ("" clears).
    trusted_domains: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]-]+$")]],
            Field(max_length=20),
        ]
        | None
    ) = None
    toolbar_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https?://\S+)?$")] | None = None


class ChatMessages(Body):
    userid: Name | None = None
    chat_key: Ref | None = None
    limit: Limit = 100


class ClickLink(Body):
    # the customer who opens the link; the link is the newest one sent to them in a 1:1 chat, or
    # the one in message ``message_id``, or ``url`` if given (it must have been sent to them)
    external_userid: Ref
    message_id: NonNeg | None = None
    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")] | None = None


class ClientCode(Body):
    # a code for ``userid`` as OAuth (kind oauth) or web login (kind web) would hand one to
    # ``redirect_uri`` (benchmarks and scripts that skip the browser pages)
    userid: Name
    kind: Literal["oauth", "web"] = "oauth"
    redirect_uri: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class BodyError(ValueError):
    pass


def validate(schema: type[Body], body: dict) -> dict:
    """The fields of ``body`` that ``schema`` accepts, or ``BodyError`` naming every problem."""
    from pydantic import ValidationError

    if _has_nul(body):
        raise BodyError("invalid body: NUL characters are not allowed")
    try:
        model = schema.model_validate(body)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False, include_input=False)[:10]:
            where = ".".join(str(p) for p in err["loc"]) or "body"
            problems.append(f"{where}: {err['msg']}")
        raise BodyError("invalid body: " + "; ".join(problems)) from None
    data = model.model_dump(exclude_unset=True)
    return {k: v for k, v in data.items() if v is not None}


def describe(schema: type[Body]) -> list[tuple[str, str, bool]]:
    """(field, type, required) of a schema, for the index page."""
    return [(name, _short_type(f.annotation), f.is_required()) for name, f in schema.model_fields.items()]


def _short_type(ann: Any) -> str:
    import types
    import typing

    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return _short_type(args[0])
    if origin in (typing.Union, types.UnionType):
        parts = [_short_type(a) for a in args if a is not type(None)]
        return " | ".join(parts)
    if origin is list:
        return f"list[{_short_type(args[0])}]" if args else "list"
    if origin is dict:
        return f"object[{_short_type(args[0])}, {_short_type(args[1])}]" if args else "object"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if ann is Any:
        return "any"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "{" + ", ".join(ann.model_fields) + "}"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        ann, getattr(ann, "__name__", str(ann))
    )


# --- the demo's history (endpoints/demo.py) ------------------------------------------------------
class DemoAttribute(Body):
    """Legacy demo state → the state of the contact way the product created for that channel."""

    states: Annotated[dict[Name, Name], Field(max_length=200)]


# --- the brand's mall, POS and membership (endpoints/mall.py) ------------------------------------------
class MallConnect(Body):
    # the product's base URL (its REST API is under /api/v1/cdp/); "" disconnects
    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https?://\S+)?$")]
    token: Annotated[str, StringConstraints(pattern=r"^\S{1,256}$")] | None = None


class MallSeed(Body):
    months: Annotated[int, Field(ge=1, le=24)] | None = None
    seed: Int | None = None


class MallHistory(Body):
    months: Annotated[int, Field(ge=1, le=24)] | None = None


class MallLive(Body):
    on: bool | None = None
    orders_per_minute: Annotated[float, Field(ge=0, le=600)] | None = None


class MallSample(Body):
    n: Annotated[int, Field(ge=1, le=1000)] | None = None
