"""The simulated WeCom world: one corp, its org, customers, groups and everything the API creates.

Times are Unix seconds on the emulator's clock (``siyu.wecom_sim.clock.now()``), which the
control API can advance. Ids follow the shapes of WeCom's samples (``wm``/``wo`` customers,
``et`` tags, ``wr`` chats, ``msg`` mass messages) because clients sniff them.
"""

from __future__ import annotations

from django.db import models


class SimState(models.Model):
    """Key/value state of the emulator: clock offset, callback target, rule overrides."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField(default=dict)


class Token(models.Model):
    access_token = models.CharField(max_length=128, primary_key=True)
    secret = models.CharField(max_length=128, db_index=True)
    created_at = models.IntegerField()
    expires_at = models.IntegerField()
    revoked = models.BooleanField(default=False)


class Department(models.Model):
    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=64)
    name_en = models.CharField(max_length=64, blank=True, default="")
    parentid = models.IntegerField(default=0, db_index=True)
    order = models.BigIntegerField(default=0)
    department_leader = models.JSONField(default=list)


class User(models.Model):
    """An employee (成员)."""

    STATUS_ACTIVE, STATUS_DISABLED, STATUS_INACTIVE, STATUS_LEFT = 1, 2, 4, 5

    userid = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=64)
    department = models.JSONField(default=list)  # [int]
    main_department = models.IntegerField(default=1)
    is_leader_in_dept = models.JSONField(default=list)  # [0|1] parallel to department
    direct_leader = models.JSONField(default=list)
    position = models.CharField(max_length=128, blank=True, default="")
    mobile = models.CharField(max_length=32, blank=True, default="")
    gender = models.CharField(max_length=1, default="0")
    email = models.CharField(max_length=128, blank=True, default="")
    avatar = models.CharField(max_length=255, blank=True, default="")
    alias = models.CharField(max_length=64, blank=True, default="")
    status = models.IntegerField(default=STATUS_ACTIVE)
    # Has the customer-contact (客户联系) function: listed by get_follow_user_list.
    contact_enabled = models.BooleanField(default=True)
    # Customer capacity used by transfers (takeover at capacity → status 4 / customer_limit_exceed).
    customer_cap = models.IntegerField(default=50000)
    dimission_time = models.IntegerField(null=True, blank=True)
    # Whether a welcome message set in the WeCom admin console applies to this employee: then
    # add events carry no WelcomeCode (send_welcome_msg doc 92137).
    console_welcome = models.BooleanField(default=False)


class ExternalContact(models.Model):
    """A customer (外部联系人): a WeChat user (type 1) or a WeCom user (type 2)."""

    external_userid = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=128)
    avatar = models.CharField(max_length=255, blank=True, default="")
    type = models.IntegerField(default=1)
    gender = models.IntegerField(default=0)
    unionid = models.CharField(max_length=64, blank=True, default="")
    position = models.CharField(max_length=64, blank=True, default="")
    corp_name = models.CharField(max_length=64, blank=True, default="")
    corp_full_name = models.CharField(max_length=128, blank=True, default="")
    mobile = models.CharField(max_length=32, blank=True, default="")  # the simulated person's phone


class Follow(models.Model):
    """A follow relation: one employee serves one customer. Tags and remarks live here."""

    ACTIVE = 0
    DELETED_BY_CUSTOMER = 1  # del_follow_user: the customer deleted the employee
    DELETED_BY_USER = 2  # del_external_contact: the employee deleted the customer
    TRANSFERRED = 3  # removed by a transfer (DELETE_BY_TRANSFER)
    HALF = 4  # add_half_external_contact: customer added, employee has not added back yet

    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    remark = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=255, blank=True, default="")
    createtime = models.IntegerField()
    remark_corp_name = models.CharField(max_length=64, blank=True, default="")
    remark_mobiles = models.JSONField(default=list)
    oper_userid = models.CharField(max_length=64, blank=True, default="")
    add_way = models.IntegerField(default=0)
    state = models.CharField(max_length=64, blank=True, default="")
    tag_ids = models.JSONField(default=list)  # corp tag ids
    personal_tags = models.JSONField(default=list)  # [{"group_name", "tag_name"}], type 2: no tag_id
    status = models.IntegerField(default=ACTIVE, db_index=True)
    status_time = models.IntegerField(null=True, blank=True)
    # Last time the employee sent a message to the customer (chat started → no welcome code).
    chatted = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["userid", "external_userid"], name="sim_follow_pair")]
        indexes = [
            models.Index(fields=["userid", "status", "id"], name="sim_follow_user"),
            models.Index(fields=["external_userid", "status"], name="sim_follow_ext"),
        ]


class TagGroup(models.Model):
    group_id = models.CharField(max_length=64, primary_key=True)
    group_name = models.CharField(max_length=64)
    create_time = models.IntegerField()
    order = models.BigIntegerField(default=0)
    deleted = models.BooleanField(default=False)
    strategy_id = models.IntegerField(null=True, blank=True)


class Tag(models.Model):
    id = models.CharField(max_length=64, primary_key=True)
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags", db_constraint=False)
    name = models.CharField(max_length=64)
    create_time = models.IntegerField()
    order = models.BigIntegerField(default=0)
    deleted = models.BooleanField(default=False)


class ContactWay(models.Model):
    """A 「联系我」 contact way (渠道活码). ``config`` holds the request fields as WeCom echoes them."""

    config_id = models.CharField(max_length=64, primary_key=True)
    type = models.IntegerField()
    scene = models.IntegerField()
    config = models.JSONField(default=dict)
    created_at = models.IntegerField(db_index=True)
    is_temp = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    used = models.BooleanField(default=False)  # temp ways become invalid after one add
    rotation = models.IntegerField(default=0)  # round-robin pointer over users for multi-user ways
    # (customers/contact-ways area) when a temporary-chat way's QR code stops working.
    expires_at = models.IntegerField(null=True, blank=True)


class WelcomeCode(models.Model):
    code = models.CharField(max_length=64, primary_key=True)
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    issued_at = models.IntegerField()
    used_at = models.IntegerField(null=True, blank=True)
    sent_payload = models.JSONField(null=True, blank=True)
    # (customers/contact-ways area) the add that issued it, and whether a later add of the same
    # pair superseded it (then it is invalid: 41050).
    state = models.CharField(max_length=64, blank=True, default="")
    config_id = models.CharField(max_length=64, blank=True, default="")
    change_type = models.CharField(max_length=32, blank=True, default="")
    revoked = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["userid", "external_userid"], name="sim_welcome_pair")]


class GroupWelcomeTemplate(models.Model):
    template_id = models.CharField(max_length=64, primary_key=True)
    content = models.JSONField(default=dict)
    agentid = models.IntegerField(null=True, blank=True)
    creator_secret = models.CharField(max_length=128, blank=True, default="")
    notify = models.IntegerField(default=1)
    deleted = models.BooleanField(default=False)


class GroupChat(models.Model):
    """A customer group (客户群)."""

    chat_id = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=128, blank=True, default="")
    owner = models.CharField(max_length=64, db_index=True)
    create_time = models.IntegerField()
    notice = models.TextField(blank=True, default="")
    admin_list = models.JSONField(default=list)  # [userid]
    # 0 owner normal, 1 owner resigned, 2 resigned transfer in progress, 3 resigned transfer done
    status = models.IntegerField(default=0)
    dismissed = models.BooleanField(default=False)
    member_version = models.CharField(max_length=64, blank=True, default="")
    # 2 customer-group owner transfers in 90 days (on-job); timestamps of past transfers.
    transfer_times = models.JSONField(default=list)


class GroupMember(models.Model):
    EMPLOYEE, CUSTOMER = 1, 2

    chat = models.ForeignKey(GroupChat, on_delete=models.CASCADE, related_name="members", db_constraint=False)
    userid = models.CharField(max_length=64)  # employee userid or external_userid
    type = models.IntegerField(default=CUSTOMER)
    unionid = models.CharField(max_length=64, blank=True, default="")
    join_time = models.IntegerField()
    join_scene = models.IntegerField(default=1)
    invitor = models.CharField(max_length=64, blank=True, default="")
    group_nickname = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chat", "userid"], name="sim_member_pair")]
        indexes = [models.Index(fields=["userid"], name="sim_member_user")]


class JoinWay(models.Model):
    config_id = models.CharField(max_length=64, primary_key=True)
    config = models.JSONField(default=dict)
    created_at = models.IntegerField()
    deleted = models.BooleanField(default=False)
    # (customers/contact-ways area) groups auto-created so far: the next is room_base_id + this.
    rooms_created = models.IntegerField(default=0)


# --- customers/contact-ways area -----------------------------------------------------------------
class TempChat(models.Model):
    """A temporary chat (临时会话) opened by adding through an ``is_temp`` contact way."""

    config_id = models.CharField(max_length=64)
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    started_at = models.IntegerField()
    expires_at = models.IntegerField()
    closed_at = models.IntegerField(null=True, blank=True)
    # The conclusions (结束语) delivered when the chat was closed by close_temp_chat.
    conclusions_sent = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["userid", "external_userid"], name="sim_tempchat_pair")]


class GroupMsg(models.Model):
    """A mass message (企业群发) created by add_msg_template (create_type 0) or by an employee (1)."""

    msgid = models.CharField(max_length=64, primary_key=True)
    chat_type = models.CharField(max_length=8, default="single")
    creator = models.CharField(max_length=64, blank=True, default="")
    create_type = models.IntegerField(default=0)
    create_time = models.IntegerField(db_index=True)
    text = models.JSONField(null=True, blank=True)
    attachments = models.JSONField(default=list)
    cancelled = models.BooleanField(default=False)
    remind_times = models.JSONField(default=list)  # timestamps of remind_groupmsg_send calls
    # (reach area) the request as sent: sender, tag_filter, allow_select, chat_id_list.
    request = models.JSONField(default=dict)


class GroupMsgTask(models.Model):
    """One sender's task in a mass message: status 0 not sent / 2 sent."""

    msg = models.ForeignKey(GroupMsg, on_delete=models.CASCADE, related_name="tasks", db_constraint=False)
    userid = models.CharField(max_length=64)
    status = models.IntegerField(default=0)
    send_time = models.IntegerField(null=True, blank=True)
    # When the simulated employee will confirm (or null: never, until the control API says so).
    confirm_at = models.IntegerField(null=True, blank=True, db_index=True)
    # (reach area) the employee chose not to send (/sim/mass/ignore): never sends.
    ignored = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["msg", "userid"], name="sim_msgtask_pair")]


class GroupMsgResult(models.Model):
    """Per recipient: 0 not sent, 1 sent, 2 not a friend, 3 already received a mass message (quota)."""

    msg = models.ForeignKey(GroupMsg, on_delete=models.CASCADE, related_name="results", db_constraint=False)
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64, blank=True, default="")
    chat_id = models.CharField(max_length=64, blank=True, default="")
    status = models.IntegerField(default=0)
    send_time = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["msg", "userid", "id"], name="sim_msgres_task"),
            # receive-quota counting: deliveries per recipient in a window
            models.Index(fields=["external_userid", "status", "send_time"], name="sim_msgres_cust"),
            models.Index(fields=["chat_id", "status", "send_time"], name="sim_msgres_chat"),
        ]


class Moment(models.Model):
    moment_id = models.CharField(max_length=64, primary_key=True)
    jobid = models.CharField(max_length=64, unique=True, null=True, blank=True)
    creator = models.CharField(max_length=64, blank=True, default="")
    create_type = models.IntegerField(default=0)
    create_time = models.IntegerField(db_index=True)
    visible_type = models.IntegerField(default=1)
    text = models.JSONField(null=True, blank=True)
    attachments = models.JSONField(default=list)
    visible_range = models.JSONField(default=dict)
    job_result = models.JSONField(default=dict)
    cancelled = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    # (reach area) the add_moment_task job: 1 started, 2 running, 3 done (get_moment_task_result).
    job_status = models.IntegerField(default=3, db_index=True)


class MomentTask(models.Model):
    moment = models.ForeignKey(Moment, on_delete=models.CASCADE, related_name="tasks", db_constraint=False)
    userid = models.CharField(max_length=64)
    publish_status = models.IntegerField(default=0)
    publish_time = models.IntegerField(null=True, blank=True)
    confirm_at = models.IntegerField(null=True, blank=True, db_index=True)
    # (reach area) the employee chose not to publish (/sim/moment/skip).
    ignored = models.BooleanField(default=False)


class MomentVisibility(models.Model):
    """The customers an employee's post was meant for, and whether it reached them."""

    moment = models.ForeignKey(Moment, on_delete=models.CASCADE, related_name="visibility", db_constraint=False)
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    delivered = models.BooleanField(default=False)
    delivered_time = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["moment", "userid", "id"], name="sim_momvis_task"),
            models.Index(fields=["external_userid", "delivered", "delivered_time"], name="sim_momvis_cust"),
        ]


class Transfer(models.Model):
    """A customer handover: on-job (在职) or resigned (离职).

    status: 1 accepted, 2 waiting, 3 refused, 4 takeover at capacity (transfer_result doc).
    """

    ONJOB, RESIGNED = "onjob", "resigned"

    kind = models.CharField(max_length=8)
    handover_userid = models.CharField(max_length=64)
    takeover_userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    status = models.IntegerField(default=2)
    start_time = models.IntegerField()
    takeover_time = models.IntegerField(default=0)
    transfer_success_msg = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["handover_userid", "takeover_userid", "id"], name="sim_transfer_pair"),
            models.Index(fields=["external_userid", "kind", "start_time"], name="sim_transfer_cust"),
            models.Index(fields=["status", "start_time"], name="sim_transfer_due"),
        ]


class Media(models.Model):
    media_id = models.CharField(max_length=128, primary_key=True)
    type = models.CharField(max_length=16)
    # temp (media/upload), attachment (media/upload_attachment, with attachment_type), image (uploadimg)
    kind = models.CharField(max_length=16, default="temp")
    attachment_type = models.IntegerField(null=True, blank=True)
    filename = models.CharField(max_length=255, blank=True, default="")
    size = models.IntegerField(default=0)
    content = models.BinaryField(null=True, blank=True)
    created_at = models.IntegerField()


class AppMessage(models.Model):
    """An app message delivered by message/send, as the recipient would see it."""

    msgid = models.CharField(max_length=64, db_index=True)
    agentid = models.IntegerField()
    touser = models.CharField(max_length=64, db_index=True)
    msgtype = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    sent_at = models.IntegerField()
    dropped = models.BooleanField(default=False)  # over the per-member rate limit: silently dropped
    # (reach area) withdrawn by message/recall.
    recalled = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["touser", "agentid", "sent_at"], name="sim_appmsg_rate")]


# --- reach & transfer area (mass messages, Moments, transfers, app messages) ---------------------
class GroupTransfer(models.Model):
    """A customer-group owner change made by groupchat/transfer (resigned) or onjob_transfer."""

    ONJOB, RESIGNED = "onjob", "resigned"

    kind = models.CharField(max_length=8)
    chat_id = models.CharField(max_length=64, db_index=True)
    handover_userid = models.CharField(max_length=64)
    takeover_userid = models.CharField(max_length=64)
    at = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["handover_userid", "takeover_userid", "at"], name="sim_grouptransfer_pair")]


class Callback(models.Model):
    """An outgoing encrypted callback, persisted with the world change that caused it."""

    PENDING, DELIVERED, FAILED = 0, 1, 2

    created_at = models.FloatField()
    event = models.CharField(max_length=64)
    change_type = models.CharField(max_length=64, blank=True, default="")
    xml = models.TextField()  # the plaintext event
    status = models.IntegerField(default=PENDING, db_index=True)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.FloatField(default=0, db_index=True)
    delivered_at = models.FloatField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True, default="")


class ApiLog(models.Model):
    """Every request the emulator answered, for tests and the control API."""

    at = models.FloatField(db_index=True)
    path = models.CharField(max_length=128, db_index=True)
    errcode = models.IntegerField()
    body = models.JSONField(null=True, blank=True)


# --- the brand's other systems: mall, POS and membership (siyu.wecom_sim.mall) ----------------------
# Not WeCom: the systems a brand already has, simulated for the same people so that the product's
# customer data (members, orders, events) joins the WeCom customers it knows. Amounts are in fen
# (integers); times are Unix seconds on the emulator's clock.
class MallStore(models.Model):
    code = models.CharField(max_length=32, primary_key=True)
    name = models.CharField(max_length=64)
    department_id = models.IntegerField()  # the emulator's store department: its staff are the guides


class MallProduct(models.Model):
    sku = models.CharField(max_length=32, primary_key=True)
    name = models.CharField(max_length=128)
    category = models.CharField(max_length=32)
    brand = models.CharField(max_length=32)
    price = models.IntegerField()  # fen


class MallMember(models.Model):
    member_no = models.CharField(max_length=32, primary_key=True)
    # the WeCom customer this person is ("" for members who never added an employee); the emulator's
    # own bookkeeping, never sent (a POS does not know WeCom's ids)
    external_userid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    unionid = models.CharField(max_length=64, blank=True, default="")
    openid = models.CharField(max_length=64, blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")  # as the POS typed it
    name = models.CharField(max_length=64, blank=True, default="")
    gender = models.CharField(max_length=8, blank=True, default="")
    level = models.CharField(max_length=16, blank=True, default="")
    points = models.IntegerField(default=0)
    birthday = models.CharField(max_length=10, blank=True, default="")
    join_store = models.CharField(max_length=32, blank=True, default="")
    joined_at = models.IntegerField()


class MallOrder(models.Model):
    order_no = models.CharField(max_length=32, primary_key=True)
    keys = models.JSONField(default=dict)  # the customer's keys as the channel knows them
    store_code = models.CharField(max_length=32, blank=True, default="")
    guide_userid = models.CharField(max_length=64, blank=True, default="")
    channel = models.CharField(max_length=16)
    paid_at = models.IntegerField(db_index=True)
    amount = models.IntegerField()  # fen, net of the discount
    discount = models.IntegerField(default=0)
    status = models.CharField(max_length=16, default="paid")
    refunded_amount = models.IntegerField(default=0)
    items = models.JSONField(default=list)  # [{sku, name, category, brand, quantity, price (fen)}]


class MallEvent(models.Model):
    event_id = models.CharField(max_length=32, primary_key=True)
    keys = models.JSONField(default=dict)
    type = models.CharField(max_length=32)
    at = models.IntegerField(db_index=True)
    props = models.JSONField(default=dict)


class MallBatch(models.Model):
    """A batch to push (the outbox): up to 1,000 rows of one kind, named by their ids and read when
    sent (so a refund queued later sends the order's latest state). Sent in id order, one at a
    time; retried with backoff until the product accepts it, never dropped."""

    PENDING, SENT = 0, 1

    kind = models.CharField(max_length=16)  # members | orders | events
    ids = models.JSONField(default=list)
    origin = models.CharField(max_length=16, default="history")  # history | live
    created_at = models.FloatField()
    status = models.IntegerField(default=PENDING, db_index=True)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.FloatField(default=0)
    last_error = models.CharField(max_length=255, blank=True, default="")
    answer = models.JSONField(default=dict)  # the product's counts: created, updated, unchanged, failed
    sent_at = models.FloatField(null=True, blank=True)


class MallRowError(models.Model):
    """A row the product refused (its per-row error), kept for the control API's status."""

    batch_id = models.IntegerField()
    kind = models.CharField(max_length=16)
    row = models.IntegerField()
    source_id = models.CharField(max_length=64, blank=True, default="")
    errors = models.JSONField(default=dict)
    at = models.FloatField()


# --- clients & identity (part 4): login and OAuth codes, JS-SDK tickets, the chat client ----------
class AuthCode(models.Model):
    """A code handed to a redirect_uri by OAuth (网页授权) or web login (扫码登录), part 4 §1–2.

    Single use, valid 5 minutes (R1). ``user_ticket`` is set for snsapi_privateinfo with an agentid
    (R3, R4); it is good for 30 minutes after the exchange (R5)."""

    code = models.CharField(max_length=128, primary_key=True)
    kind = models.CharField(max_length=8)  # oauth | web
    userid = models.CharField(max_length=64)
    scope = models.CharField(max_length=32, blank=True, default="")
    agentid = models.IntegerField(null=True, blank=True)
    redirect_host = models.CharField(max_length=255, blank=True, default="")
    issued_at = models.IntegerField()
    used_at = models.IntegerField(null=True, blank=True)
    user_ticket = models.CharField(max_length=128, blank=True, default="", db_index=True)


class JsTicket(models.Model):
    """A jsapi ticket (corp: get_jsapi_ticket, agent: ticket/get?type=agent_config), part 4 §3.1."""

    ticket = models.CharField(max_length=128, primary_key=True)
    kind = models.CharField(max_length=8)  # corp | agent
    issued_at = models.IntegerField()
    expires_at = models.IntegerField()


class ChatMessage(models.Model):
    """What an employee sent into a chat from a page in the client (sendChatMessage), or put into
    群发助手 / Moments with shareToExternalContact/Chat/Moments and confirmed (part 4 §3.5)."""

    userid = models.CharField(max_length=64, db_index=True)
    chat_type = models.CharField(max_length=8)  # single | group | share_contact | share_chat | moments
    chat_key = models.CharField(max_length=64, blank=True, default="", db_index=True)  # external_userid or chat_id
    msgtype = models.CharField(max_length=16)
    payload = models.JSONField(default=dict)
    via = models.CharField(max_length=32, default="sendChatMessage")
    sent_at = models.IntegerField()


class LinkVisit(models.Model):
    """A customer opening a link they received in a chat (control action ``click_link``): the
    emulator's WeChat browser requests the URL and records what the server answered."""

    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="visits", db_constraint=False)
    external_userid = models.CharField(max_length=64)
    url = models.CharField(max_length=2048)
    status = models.IntegerField()
    location = models.CharField(max_length=2048, blank=True, default="")
    at = models.IntegerField()
