from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from authms.ids import PrefixedIdField


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    PUSH = "push", _("Push")


class Category(models.TextChoices):
    """What a message is about, set on templates (free text: `general` unless the bulk says):
    recipients choose per category and channel what reaches them."""

    SECURITY = "security", _("Security")  # verification codes, sign-in alerts: critical
    ACCOUNT = "account", _("Account")
    GENERAL = "general", _("General")
    MARKETING = "marketing", _("Marketing")


# Messages nobody may switch off, and that quiet hours do not hold back.
CRITICAL_CATEGORIES = frozenset({Category.SECURITY})


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    DELIVERED = "delivered", _("Delivered")


class StatusDetail(models.TextChoices):
    """Finer states under the seed's four statuses (API extension `status_detail`)."""

    QUEUED = "queued", _("Queued")  # pending: waiting for a worker
    SCHEDULED = "scheduled", _("Scheduled")  # pending: waits for the bulk's send_at (next_attempt_at)
    RETRYING = "retrying", _("Retrying")  # pending: the provider never got it; due at next_attempt_at
    RECONCILING = "reconciling", _("Reconciling")  # pending: it may have gone out; asking the gateway
    QUIET_HOURS = "quiet_hours", _("Quiet hours")  # pending: held until the recipient's quiet hours end
    INVALID = "invalid", _("Invalid recipient")  # failed
    SUPPRESSED = "suppressed", _("Suppressed")  # failed
    REJECTED = "rejected", _("Rejected")  # failed: the provider refused it
    GAVE_UP = "gave_up", _("Gave up")  # failed: never reached the provider in the retry schedule
    UNKNOWN = "unknown", _("Outcome unknown")  # failed: may have gone out; could not be settled
    UNDELIVERED = "undelivered", _("Undelivered")  # failed: the carrier reported it
    CANCELLED = "cancelled", _("Cancelled")  # failed: cancelled before it was handed to a provider
    FREQUENCY_CAPPED = "frequency_capped", _("Frequency cap")  # failed: too many to this recipient lately
    PREFERENCE_OFF = "preference_off", _("Preference off")  # failed: the recipient switched this off


# Failed logs no provider was ever handed (refused before sending): they count neither as sent
# to a recipient (frequency caps) nor as having left (cancellation).
NEVER_HANDED_OVER = frozenset(
    {
        StatusDetail.INVALID,
        StatusDetail.SUPPRESSED,
        StatusDetail.CANCELLED,
        StatusDetail.FREQUENCY_CAPPED,
        StatusDetail.PREFERENCE_OFF,
    }
)


# The one place the status rule lives: pending → sent → delivered | failed, or
# pending → failed. A report never moves a log backwards.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.SENT, Status.FAILED, Status.DELIVERED}),
    Status.SENT: frozenset({Status.DELIVERED, Status.FAILED}),
    Status.DELIVERED: frozenset(),
    Status.FAILED: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


def statuses_that_may_become(new: str) -> list[str]:
    """The current statuses from which `new` is allowed (for bulk, filter-based updates)."""
    return [current for current in ALLOWED_TRANSITIONS if can_transition(current, new)]


RESPONSE_MAX_BYTES = 2048


class CommunicationLog(models.Model):
    id = PrefixedIdField(prefix="log")
    # No index of its own: every composite index below leads with tenant, and each index
    # costs every send and every delivery report a write.
    tenant = models.ForeignKey(
        "authms.Tenant", verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    provider = models.CharField(_("provider"), max_length=32)
    template = models.ForeignKey(
        "message_templates.Template",
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,  # logs keep the template id even if the template is deleted
        db_index=False,  # log_template: only logs that have one
        related_name="+",
    )
    recipient = models.CharField(_("recipient"), max_length=320, help_text=_("Normalised, stored in full."))
    subject = models.CharField(_("subject"), max_length=255, blank=True, default="")
    content = models.TextField(_("content"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    status_detail = models.CharField(
        _("status detail"), max_length=20, choices=StatusDetail.choices, blank=True, default="", db_default=""
    )
    error = models.TextField(_("error"), null=True, blank=True)
    response = models.TextField(_("provider response"), null=True, blank=True)
    batch_id = models.CharField(_("batch id"), max_length=32, null=True, blank=True)
    retry_of = models.CharField(
        _("retry of"),
        max_length=32,
        null=True,
        blank=True,
        help_text=_("The failed log this one resends (staff retry)."),
    )
    provider_message_id = models.CharField(_("provider message id"), max_length=255, null=True, blank=True)
    # Push only: the data map and deep link sent with the notification (title: subject, body:
    # content). Kept with the log, unlike send_payload, so a retry sends the same.
    push_data = models.JSONField(_("push data and link"), null=True, blank=True)
    send_payload = models.JSONField(
        _("send payload"),
        null=True,
        blank=True,
        help_text=_(
            "What the provider must receive when it differs from `content` (sensitive text, "
            "provider template variables). Erased once the log leaves pending."
        ),
    )
    fee = models.PositiveSmallIntegerField(
        _("fee"), null=True, blank=True, help_text=_("Billed units, as the provider reported.")
    )
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0, help_text=_("Times the message was handed to its provider.")
    )
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        null=True,
        blank=True,
        help_text=_("When a message waiting to be retried is due."),
    )
    provider_ref = models.CharField(
        _("provider reference"),
        max_length=32,
        null=True,
        blank=True,
        help_text=_(
            "Sent with the provider call and echoed back (SUBMAIL tag), to reconcile unknown outcomes."
        ),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "communication_log"
        verbose_name = _("communication log")
        verbose_name_plural = _("communication logs")
        ordering = ["-created_at", "-id"]
        # Lists and exports always mask recipients; the full one shows on a log's own page only
        # to staff given this (platform admins have it; tenant admins when granted).
        permissions = [("view_full_recipient", _("Can see a log's full recipient on its page"))]
        indexes = [
            models.Index(fields=["tenant", "user", "-created_at", "-id"], name="log_tenant_user_created"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="log_tenant_created"),
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="log_tenant_status_created"),
            models.Index(
                fields=["tenant", "channel", "-created_at", "-id"], name="log_tenant_channel_created"
            ),
            models.Index(
                fields=["tenant", "provider", "-created_at", "-id"], name="log_tenant_provider_created"
            ),
            # Only the finer states: delivered and sent logs (most of them) have none.
            models.Index(
                fields=["tenant", "status_detail", "-created_at", "-id"],
                name="log_tenant_detail_created",
                condition=~models.Q(status_detail=""),
            ),
            models.Index(fields=["-created_at", "-id"], name="log_created"),
            # Partial, like log_template: every status change writes an entry into each index
            # whose condition the row meets, and a pending log has neither (the claim, the
            # sent record and each report cost one entry less apiece). Lookups name a value,
            # which the condition admits.
            models.Index(
                fields=["provider_message_id"],
                name="log_provider_message_id",
                condition=models.Q(provider_message_id__isnull=False),
            ),
            models.Index(
                fields=["template"], name="log_template", condition=models.Q(template__isnull=False)
            ),
            # In id order within a batch: even a plan built on stale statistics that picks it
            # for the claim needs no sort and stops at the LIMIT.
            models.Index(fields=["batch_id", "id"], name="log_batch"),
            models.Index(fields=["recipient"], name="log_recipient"),
            # Accepted, not yet reported delivered or failed: the provider health check counts
            # these per provider ("sent but not delivered after N minutes"). Rows leave it when
            # their report arrives, so it stays the size of what is in flight at the carriers.
            models.Index(
                fields=["provider", "sent_at"], name="log_awaiting_report", condition=models.Q(status="sent")
            ),
            # Claimed rows in flight, for the sweeper's stale-claim scan: always tiny.
            models.Index(
                fields=["claimed_at"],
                name="log_claimed",
                condition=models.Q(status="pending", claimed_at__isnull=False),
            ),
            # The claim (a batch's claimable rows in id order, LIMIT n FOR UPDATE SKIP LOCKED)
            # reads exactly this index in order and stops after n rows: the right plan whether
            # statistics say few rows are pending or many. There is deliberately no other
            # pending-only index: with stale statistics the planner once chose one and sorted
            # every pending row of a burst. The sweeper's scan of waiting rows uses this too.
            models.Index(
                fields=["batch_id", "id"],
                name="log_claimable",
                condition=models.Q(status="pending", claimed_at__isnull=True),
            ),
        ]

    def __str__(self):
        return self.id


class Batch(models.Model):
    """One bulk request: who sent it, for whom, and when every log reached a final status."""

    id = PrefixedIdField(prefix="bat")
    tenant = models.ForeignKey("authms.Tenant", on_delete=models.PROTECT, related_name="+")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Sent on behalf of."),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    total = models.PositiveIntegerField(_("recipients"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("Scheduled for."))
    # The tenant's own name for what to cancel together (POST /communication/cancel).
    cancellation_key = models.CharField(_("cancellation key"), max_length=100, blank=True, default="")

    class Meta:
        db_table = "communication_batch"
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="batch_tenant_created"),
            models.Index(
                fields=["completed_at"], name="batch_open", condition=models.Q(completed_at__isnull=True)
            ),
            models.Index(
                fields=["tenant", "cancellation_key"],
                name="batch_cancellation_key",
                condition=~models.Q(cancellation_key=""),
            ),
        ]

    def __str__(self):
        return self.id


class Suppression(models.Model):
    """A recipient who must not be contacted on a channel in a tenant (unsubscribed, bounced, blocked)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        MANUAL = "manual", _("Added by staff")

    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    recipient = models.CharField(
        _("recipient"), max_length=320, help_text=_("Normalised: +8613800138000 or a@example.com.")
    )
    category = models.CharField(
        _("category"),
        max_length=20,
        choices=Category.choices,
        blank=True,
        help_text=_("Only messages of this category (an unsubscribe from one kind of email). Empty: all."),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, default=Reason.MANUAL)
    detail = models.TextField(
        _("detail"), blank=True, help_text=_("What put it there (the ESP's bounce text).")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "communication_suppression"
        verbose_name = _("suppression")
        verbose_name_plural = _("suppression list")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "recipient", "category"], name="suppression_unique_recipient"
            )
        ]

    def __str__(self):
        return f"{self.recipient} ({self.channel})"


class SyncCursor(models.Model):
    """Where delivery-status polling of one provider account has got to.

    A pass walks one time window [window_start, window_end] page by page (`offset`);
    the next pass starts a new window that overlaps the last one, so late reports are
    not skipped.
    """

    provider = models.CharField(max_length=32)
    account = models.CharField(max_length=64)
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField(null=True)
    offset = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True)
    last_run_at = models.DateTimeField(null=True)
    # When this window's first page was asked for: messages held for reconciliation after it
    # are not candidates on its later pages, so they need a pass of their own.
    window_opened_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "communication_sync_cursor"
        constraints = [
            models.UniqueConstraint(fields=["provider", "account"], name="sync_cursor_unique_account")
        ]

    def __str__(self):
        return f"{self.provider}:{self.account}"

    @property
    def window_done(self) -> bool:
        return self.window_end is None or (self.total is not None and self.offset >= self.total)


class SyncRun(models.Model):
    """One status-sync call, for the admin's "recent sync runs"."""

    provider = models.CharField(_("provider"), max_length=32)
    account = models.CharField(_("account"), max_length=64)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    window_start = models.DateTimeField(_("window start"), null=True)
    window_end = models.DateTimeField(_("window end"), null=True)
    offset = models.PositiveIntegerField(_("offset"), default=0)
    received = models.PositiveIntegerField(_("rows received"), default=0)
    applied = models.PositiveIntegerField(_("logs updated"), default=0)
    unknown = models.PositiveIntegerField(_("unknown send ids"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        db_table = "communication_sync_run"
        verbose_name = _("status sync run")
        verbose_name_plural = _("status sync runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="sync_run_started")]

    def __str__(self):
        return f"{self.provider} {self.started_at:%Y-%m-%d %H:%M:%S}"


class ReceiptToken(models.Model):
    """The one-time token of a signed provider push (SUBMAIL SUBHOOK), kept so a captured
    (token, signature) pair cannot be replayed with other fields: the signature covers the
    token only. `fingerprint` tells a provider's honest redelivery from a forgery."""

    provider = models.CharField(max_length=32)
    token = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "communication_receipt_token"
        constraints = [models.UniqueConstraint(fields=["provider", "token"], name="receipt_token_unique")]
        indexes = [models.Index(fields=["received_at"], name="receipt_token_received")]

    def __str__(self):
        return f"{self.provider}:{self.token}"


class PushedReports(models.Model):
    """Delivery reports a provider pushed (Aliyun's receipts), kept from the request until a
    worker has applied them. The provider has had its answer and will not push them again,
    so this row is their only copy: a task lost with its worker or with the broker is made up
    by the sweeper, which applies rows older than PUSHED_REPORTS_SWEEP_AFTER."""

    provider = models.CharField(max_length=32)
    reports = models.JSONField()  # report_as_dict of each
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "communication_pushed_reports"
        indexes = [models.Index(fields=["received_at"], name="pushed_reports_received")]

    def __str__(self):
        return f"{self.provider}: {len(self.reports)} reports at {self.received_at:%Y-%m-%d %H:%M:%S}"


class DeliveryAttempt(models.Model):
    """A provider attempt that did not settle its message: the provider refused to take it
    (down, throttled, misconfigured) and the message waited for a retry or moved on to the
    next provider of its route. With the log itself (its provider, status and times: the
    attempt that settled it) these rows are the message's path, shown to staff."""

    log = models.ForeignKey(
        CommunicationLog,
        on_delete=models.CASCADE,
        related_name="delivery_attempts",
        verbose_name=_("log"),
        # The partitioned log table's key is (id, created_at); the log purge deletes these first.
        db_constraint=False,
    )
    provider = models.CharField(_("provider"), max_length=32)
    at = models.DateTimeField(_("at"), default=timezone.now)
    error = models.TextField(_("error"), blank=True)
    next_provider = models.CharField(
        _("moved to"), max_length=32, blank=True, help_text=_("Empty: retried later on the route.")
    )

    class Meta:
        db_table = "communication_delivery_attempt"
        verbose_name = _("provider attempt")
        verbose_name_plural = _("provider attempts")
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.provider} {self.at:%Y-%m-%d %H:%M:%S}"


class UnstartedCall(models.Model):
    """A provider call its claim planned after the chunk's first, not started yet.

    The claim stores every call's reference before any call, so the logs of a call that a
    dying worker never made look handed over like the rest. The worker deletes the row just
    before its call; the sweeper, finding a dead worker's claim, deletes the rows of the calls
    still here and gives their logs back to the queue. Whoever deletes a row owns its call, so
    a worker thought dead and the sweeper never both act on it."""

    reference = models.CharField(max_length=32, primary_key=True)
    planned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "communication_unstarted_call"

    def __str__(self):
        return self.reference


class ProviderHealth(models.Model):
    """Whether a provider is in rotation. Taken out when its recent calls mostly fail to hand
    messages over; probed with a share of traffic; put back when the probes succeed."""

    class State(models.TextChoices):
        IN = "in", _("in rotation")
        OUT = "out", _("out of rotation")

    class Cause(models.TextChoices):
        CALLS = "calls", _("failing or slow calls")
        DELIVERY = "delivery", _("accepted messages not reported delivered")

    provider = models.CharField(_("provider"), max_length=32, unique=True)
    state = models.CharField(_("state"), max_length=3, choices=State.choices, default=State.IN)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    reason = models.TextField(_("reason"), blank=True)
    # Why it went out: a provider out for undelivered messages needs delivered probes to return.
    cause = models.CharField(_("cause"), max_length=10, choices=Cause.choices, blank=True)

    class Meta:
        db_table = "communication_provider_health"
        verbose_name = _("provider health")
        verbose_name_plural = _("provider health")

    def __str__(self):
        return f"{self.provider}: {self.state}"


class ProviderSwitch(models.Model):
    """Audit: one row each time a provider leaves or rejoins the rotation."""

    provider = models.CharField(_("provider"), max_length=32)
    state = models.CharField(_("new state"), max_length=3, choices=ProviderHealth.State.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    reason = models.TextField(_("reason"))

    class Meta:
        db_table = "communication_provider_switch"
        verbose_name = _("provider switch")
        verbose_name_plural = _("provider switches")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.provider} → {self.state} {self.at:%Y-%m-%d %H:%M:%S}"


class SuppressionLift(models.Model):
    """Audit: staff took a recipient off a suppression list, and why."""

    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    recipient = models.CharField(_("recipient"), max_length=320)
    was = models.CharField(_("suppressed for"), max_length=20, choices=Suppression.Reason.choices)
    suppressed_at = models.DateTimeField(_("suppressed at"))
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("lifted by")
    )
    note = models.TextField(_("reason for lifting"))
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        db_table = "communication_suppression_lift"
        verbose_name = _("lifted suppression")
        verbose_name_plural = _("lifted suppressions")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.recipient} ({self.channel})"


class EmailEvent(models.Model):
    """What an ESP's tracking webhook said about one email (delivery, bounces, complaints,
    opens, clicks). Status changes go through the forward-only rule; these rows keep the
    rest, count opens and clicks, and count soft bounces for the bounce policy."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("Delivered")
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCE = "soft_bounce", _("Soft bounce")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")
        COMPLAINED = "complained", _("Complained")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")

    log = models.ForeignKey(
        CommunicationLog,
        on_delete=models.CASCADE,
        related_name="email_events",
        verbose_name=_("log"),
        # The partitioned log table's key is (id, created_at); the log purge deletes these first.
        db_constraint=False,
    )
    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    recipient = models.CharField(_("recipient"), max_length=320)
    kind = models.CharField(_("event"), max_length=12, choices=Kind.choices)
    at = models.DateTimeField(_("at"))
    detail = models.TextField(_("detail"), blank=True)
    esp = models.CharField(_("ESP"), max_length=32)
    # The ESP's own id for the event, when it gives one: a redelivered webhook is recorded once.
    event_id = models.CharField(_("event id"), max_length=255, null=True, blank=True)

    class Meta:
        db_table = "communication_email_event"
        verbose_name = _("email event")
        verbose_name_plural = _("email events")
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["esp", "event_id"], name="email_event_once")]
        indexes = [
            models.Index(fields=["tenant", "recipient", "kind", "at"], name="email_event_recipient"),
        ]

    def __str__(self):
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M:%S}"


def _counted_for(model: str) -> models.ForeignKey:
    """A count row's tenant or user: no constraint (counts block no delete) and no index of its
    own (each count table declares the ones its readers need)."""
    return models.ForeignKey(
        model, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )


class LogCountFields(models.Model):
    """Logs per tenant, hour of creation (UTC), channel, provider and status, with the failure
    reason's first 200 characters for failed logs and the delivery latency summed for delivered
    ones. Kept by database triggers on the log table (`communication/log_counts_sql.py`), so
    every write path counts, bulk updates included, in the transaction that made the change."""

    tenant = _counted_for("authms.Tenant")
    hour = models.DateTimeField()
    channel = models.CharField(max_length=10)
    provider = models.CharField(max_length=32)
    status = models.CharField(max_length=10)
    error = models.CharField(max_length=200, blank=True, default="")
    messages = models.BigIntegerField(default=0)
    # Sum and count of delivered_at - sent_at over delivered logs with both times.
    latency_ms = models.BigIntegerField(default=0)
    latency_messages = models.BigIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.tenant_id} {self.hour:%Y-%m-%d %H}h {self.channel}/{self.provider}/{self.status}: {self.messages}"


class LogCount(LogCountFields):
    """The folded figures: one row per group and hour."""

    class Meta:
        db_table = "communication_log_count"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "hour", "channel", "provider", "status", "error"], name="log_count_group"
            )
        ]
        indexes = [
            models.Index(fields=["hour"], name="log_count_hour"),
            # A deep page of the admin list by status sums a status's hours, not every group's.
            models.Index(fields=["tenant", "status", "hour"], name="log_count_tenant_status_hour"),
        ]


class LogCountDelta(LogCountFields):
    """PostgreSQL: changes not folded into LogCount yet. The triggers only append here (no row
    is locked, so concurrent senders never wait on a shared counter); a task folds them every
    30 s, and readers add both tables in one statement, so a figure is exact at any moment."""

    id = models.BigAutoField(primary_key=True)

    class Meta:
        db_table = "communication_log_count_delta"


class LogTotalFields(models.Model):
    """Logs per tenant, channel, status and finer state, at any time: the log lists' exact
    totals, kept by database triggers like LogCount (`communication/services/log_counts.py`)."""

    tenant = _counted_for("authms.Tenant")
    channel = models.CharField(max_length=10)
    status = models.CharField(max_length=10)
    status_detail = models.CharField(max_length=20)
    messages = models.BigIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.tenant_id} {self.channel}/{self.status}/{self.status_detail}: {self.messages}"


class LogUserCountFields(LogTotalFields):
    """…per user: the user list's total, and the admin list's by user_id."""

    user = _counted_for(settings.AUTH_USER_MODEL)

    class Meta:
        abstract = True


class LogUserCount(LogUserCountFields):
    class Meta:
        db_table = "communication_log_user_count"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user", "channel", "status", "status_detail"], name="log_user_count_group"
            )
        ]


class LogUserCountDelta(LogUserCountFields):
    """PostgreSQL: changes not folded in yet (appended, never locked; see LogCountDelta)."""

    id = models.BigAutoField(primary_key=True)

    class Meta:
        db_table = "communication_log_user_count_delta"
        # A list's total reads one user's unfolded deltas on every request.
        indexes = [models.Index(fields=["tenant", "user"], name="log_user_count_delta_user")]


class LogTenantCountFields(LogTotalFields):
    """…per tenant and provider: the admin list's total."""

    provider = models.CharField(max_length=32)

    class Meta:
        abstract = True


class LogTenantCount(LogTenantCountFields):
    class Meta:
        db_table = "communication_log_tenant_count"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "provider", "status", "status_detail"],
                name="log_tenant_count_group",
            )
        ]


class LogTenantCountDelta(LogTenantCountFields):
    """PostgreSQL: changes not folded in yet."""

    id = models.BigAutoField(primary_key=True)

    class Meta:
        db_table = "communication_log_tenant_count_delta"
        indexes = [models.Index(fields=["tenant"], name="log_tenant_count_delta_tenant")]


class LogUserDayFields(models.Model):
    """Logs per user and day of creation (UTC), at any time: the user list's exact total between
    two times without counting more than its two partial days (communication.selectors), kept
    by triggers like LogUserCount."""

    tenant = _counted_for("authms.Tenant")
    user = _counted_for(settings.AUTH_USER_MODEL)
    day = models.DateField()
    messages = models.BigIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.user_id} {self.day}: {self.messages}"


class LogUserDayCount(LogUserDayFields):
    class Meta:
        db_table = "communication_log_user_day_count"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "day"], name="log_user_day_count_group")
        ]


class LogUserDayCountDelta(LogUserDayFields):
    """PostgreSQL: changes not folded in yet."""

    id = models.BigAutoField(primary_key=True)

    class Meta:
        db_table = "communication_log_user_day_count_delta"
        indexes = [models.Index(fields=["tenant", "user", "day"], name="log_user_day_delta_user")]


class Device(models.Model):
    """Where a user's push notifications go: an FCM registration token (Android, iOS through
    FCM's APNs block) or a browser's Web Push subscription (endpoint + p256dh + auth).
    Tokens, endpoints and auth secrets are secrets: masked in every output but the owner's own
    registration answer, and kept out of error texts."""

    class Platform(models.TextChoices):
        ANDROID = "android", _("Android")
        IOS = "ios", _("iOS")
        WEB = "web", _("Web")

    class Provider(models.TextChoices):
        FCM = "fcm", _("Firebase Cloud Messaging")
        WEBPUSH = "webpush", _("Web Push")

    id = PrefixedIdField(prefix="dev")
    tenant = models.ForeignKey(
        "authms.Tenant", verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="devices"
    )
    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices)
    provider = models.CharField(_("push service"), max_length=10, choices=Provider.choices)
    # FCM: the registration token; Web Push: the subscription's endpoint URL.
    token = models.CharField(_("token or endpoint"), max_length=1024)
    p256dh = models.CharField(_("p256dh key"), max_length=100, blank=True)
    auth = models.CharField(_("auth secret"), max_length=50, blank=True)
    app_id = models.CharField(_("app id"), max_length=255, blank=True, help_text=_("Package or bundle id."))
    device_id = models.CharField(
        _("device id"),
        max_length=64,
        blank=True,
        help_text=_("The app's id for this install (one token each)."),
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    locale = models.CharField(_("locale"), max_length=35, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    app_version = models.CharField(_("app version"), max_length=50, blank=True)
    active = models.BooleanField(_("active"), default=True)
    failure_count = models.PositiveIntegerField(_("failures"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    deactivated_at = models.DateTimeField(_("deactivated at"), null=True, blank=True)

    class Meta:
        db_table = "communication_device"
        verbose_name = _("push device")
        verbose_name_plural = _("push devices")
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider", "token"], name="device_token_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "user", "active"], name="device_user_active")]

    def __str__(self):
        return f"{self.get_provider_display()} {self.masked_token}"

    @property
    def masked_token(self) -> str:
        return mask_secret(self.token)


def mask_secret(value: str) -> str:
    """First 6 and last 4 characters of a token or endpoint; the rest hidden."""
    return f"{value[:6]}…{value[-4:]}" if len(value) > 12 else "…"


SPEND_METER = "spend"  # the SendUsage "channel" that meters estimated cost


class SendUsage(models.Model):
    """Messages a tenant queued on a channel in one day or month (CAPS_TIME_ZONE): what the
    sending caps are checked against. Rows are locked while a bulk reserves its share, so two
    bulks racing for the last of an allowance cannot both pass."""

    class Period(models.TextChoices):
        DAY = "day", _("day")
        MONTH = "month", _("month")

    tenant = models.ForeignKey("authms.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.CharField(
        _("channel"), max_length=10, choices=[*Channel.choices, (SPEND_METER, _("Spend"))]
    )
    period = models.CharField(_("period"), max_length=5, choices=Period.choices)
    starts = models.DateField(_("starts"))
    # Messages; for the spend meter, ten-thousandths of SPEND_CURRENCY (prices like 0.0450).
    used = models.PositiveBigIntegerField(_("used"), default=0)
    # The highest share of the cap (80 or 100 %) the tenant's admins were told about this period.
    alerted = models.PositiveSmallIntegerField(_("alerted at %"), default=0)

    class Meta:
        db_table = "communication_send_usage"
        verbose_name = _("sending usage")
        verbose_name_plural = _("sending usage")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "period", "starts"], name="send_usage_period"
            )
        ]

    def __str__(self):
        return f"{self.tenant_id} {self.channel} {self.period} {self.starts}: {self.used}"


class Preference(models.Model):
    """A user's choice for one category on one channel; with none, the tenant's default (on)."""

    tenant = models.ForeignKey("authms.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences", verbose_name=_("user")
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "communication_preference"
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "category", "channel"], name="preference_per_user"),
        ]
        # "Has anyone in the tenant switched this off?", asked by every bulk before it looks closer.
        indexes = [
            models.Index(fields=["tenant", "category", "channel", "enabled"], name="preference_lookup")
        ]

    def __str__(self):
        return f"{self.user_id} {self.category}/{self.channel}: {'on' if self.enabled else 'off'}"


class Price(models.Model):
    """What one message costs at a provider for a destination country, for the spend caps'
    estimate. Country "*" is the provider's price for any country without its own row."""

    ANY_COUNTRY = "*"

    provider = models.CharField(_("provider"), max_length=32)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    country = models.CharField(
        _("country"), max_length=2, help_text=_('ISO 3166 code of the number, e.g. CN; "*" for any other.')
    )
    unit_price = models.DecimalField(
        _("price per message"),
        max_digits=10,
        decimal_places=4,
        validators=[MinValueValidator(0)],
        help_text=_("In SPEND_CURRENCY, e.g. 0.0450."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "communication_price"
        verbose_name = _("price")
        verbose_name_plural = _("price table")
        ordering = ["provider", "channel", "country"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "channel", "country"], name="price_per_destination")
        ]

    def __str__(self):
        return f"{self.provider} {self.channel} {self.country}: {self.unit_price}"


# --- Events and webhooks -------------------------------------------------------------------


_SEQUENCED = models.Q(position__isnull=False)


class Event(models.Model):
    """What happened, for the events feed and tenant webhooks: an outbox row written in the
    transaction of the change itself. Message events come from database triggers on the log
    table (every write path, bulk SQL included); batch, suppression and provider events from
    the services that make those changes.

    `position` numbers events in commit order (the sequencer gives it, under a lock, to rows
    already committed), so a feed read as `position > cursor` never skips one. The columns
    snapshot the log at the change; `body` is the JSON sent and listed, serialised once.
    """

    class Type(models.TextChoices):
        MESSAGE_SENT = "message.sent", "message.sent"
        MESSAGE_DELIVERED = "message.delivered", "message.delivered"
        MESSAGE_FAILED = "message.failed", "message.failed"
        MESSAGE_UNKNOWN = "message.unknown", "message.unknown"
        MESSAGE_RECONCILED = "message.reconciled", "message.reconciled"
        BATCH_COMPLETED = "batch.completed", "batch.completed"
        SUPPRESSION_ADDED = "suppression.added", "suppression.added"
        PROVIDER_SWITCHED = "provider.switched", "provider.switched"  # platform only (no tenant)

    seq = models.BigAutoField(primary_key=True)
    id = models.CharField(_("id"), max_length=40, unique=True)  # evt_…, made in SQL for trigger rows
    position = models.BigIntegerField(_("position"), null=True)  # unique: event_position
    tenant_id = models.CharField(_("tenant"), max_length=30, null=True)
    type = models.CharField(_("type"), max_length=40, choices=Type.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    user_id = models.CharField(max_length=30, null=True)
    batch_id = models.CharField(max_length=30, null=True)
    log_id = models.CharField(max_length=30, null=True)
    channel = models.CharField(max_length=10, blank=True, default="")
    provider = models.CharField(max_length=32, blank=True, default="")
    recipient = models.CharField(max_length=320, blank=True, default="")  # masked in `body`
    status = models.CharField(max_length=10, blank=True, default="")
    status_detail = models.CharField(max_length=20, blank=True, default="")
    error = models.TextField(null=True)
    provider_message_id = models.CharField(max_length=128, null=True)
    template_id = models.CharField(max_length=30, null=True)
    log_created_at = models.DateTimeField(null=True)
    sent_at = models.DateTimeField(null=True)
    delivered_at = models.DateTimeField(null=True)
    data = models.JSONField(null=True)  # batch, suppression and provider events
    body = models.TextField(null=True)

    class Meta:
        db_table = "communication_event"
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["seq"], name="event_unsequenced", condition=models.Q(position__isnull=True)),
            # The feed's indexes hold sequenced events only: an event is written (by the log
            # table's triggers, in the sending statement) without a position, and so without
            # an entry in any of these until the sequencer numbers it.
            models.Index(fields=["tenant_id", "position"], name="event_tenant_feed", condition=_SEQUENCED),
            models.Index(
                fields=["tenant_id", "user_id", "position"], name="event_user_feed", condition=_SEQUENCED
            ),
            models.Index(fields=["occurred_at"], name="event_occurred"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["position"], name="event_position", condition=_SEQUENCED),
        ]

    def __str__(self):
        return f"{self.id} {self.type}"


class EventSequence(models.Model):
    """The one row the sequencer locks: the last position given and how far the purge went."""

    last_position = models.BigIntegerField(default=0)
    purged_through = models.BigIntegerField(default=0)

    class Meta:
        db_table = "communication_event_sequence"

    def __str__(self):
        return f"position {self.last_position}"


class WebhookEndpoint(models.Model):
    """A tenant's URL that receives its events, signed (Standard Webhooks) with the endpoint's
    secret, kept encrypted. During a rotation the previous secret signs too until it expires."""

    id = PrefixedIdField(prefix="whk")
    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    url = models.CharField(_("URL"), max_length=1024, help_text=_("https, on a public address."))
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(
        _("event types"), default=list, blank=True, help_text=_("Empty: every type of the tenant's events.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    secret = models.TextField(editable=False)  # encrypted
    previous_secret = models.TextField(blank=True, editable=False)  # encrypted
    previous_secret_expires_at = models.DateTimeField(null=True, editable=False)
    failing_since = models.DateTimeField(_("failing since"), null=True, editable=False)
    disabled_reason = models.CharField(_("disabled because"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "communication_webhook_endpoint"
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at"]

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: due at `next_attempt_at` until delivered or exhausted."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        EXHAUSTED = "exhausted", _("Exhausted")  # every scheduled attempt failed
        CANCELLED = "cancelled", _("Cancelled")  # the endpoint was disabled or deleted

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+", verbose_name=_("event"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True)
    claimed_until = models.DateTimeField(null=True)  # a sender holds it until then
    manual = models.BooleanField(_("manual redelivery"), default=False)  # one attempt, no schedule
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True)

    class Meta:
        db_table = "communication_webhook_delivery"
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due", condition=models.Q(state="pending")
            ),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self):
        return f"{self.event_id} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    response = models.TextField(_("response (first 2 KB)"), blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    manual = models.BooleanField(_("manual redelivery"), default=False)

    class Meta:
        db_table = "communication_webhook_attempt"
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.delivery_id} {self.status_code or self.error}"
