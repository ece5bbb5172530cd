"""Writes of the communication pipeline, one module per concern:

- `batches`: creating batches of logs (bulk send, staff retry), enqueueing their dispatch,
  and completing them (with the sender's notice).
- `dispatch`: claiming pending logs, sending them through providers, recording the answers,
  retries with backoff, and the sweeper.
- `status`: the one forward-only status function, provider reports and pushed receipts.
- `suppression`: the suppression list and unsubscribe replies.
- `preferences`: what reaches a recipient and when (preferences, quiet hours, unsubscribe links).

Dependencies point one way (dispatch → batches → suppression; dispatch → status); callers
import from here.
"""

from communication.services.batches import (
    BulkResult,
    CancelResult,
    RetryResult,
    batch_complete_if_done,
    batches_cancel,
    bulk_send,
    bulk_send_now,
    enqueue_dispatch,
    logs_retry,
    notify_batch_completed,
)
from communication.services.controls import delivery_controls_update
from communication.services.devices import device_delete, device_register, devices_deactivate
from communication.services.dispatch import DispatchReport, SweepReport, dispatch_pending, sweep_pending
from communication.services.preferences import PreferenceChange, preferences_update, unsubscribe
from communication.services.status import (
    ReplayedReceipt,
    ReportsApplied,
    StatusUpdate,
    logs_apply_status,
    pushed_reports_apply,
    pushed_reports_keep,
    receipt_fingerprint,
    receipt_token_claim,
    receipt_tokens_purge,
    report_as_dict,
    report_from_dict,
    reports_apply,
    truncate_response,
)
from communication.services.suppression import suppress_sms_reply, suppressed_keys, suppression_add
from communication.services.webhooks import (
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_recover,
    endpoint_update,
    secret_rotate,
)

__all__ = [
    "BulkResult",
    "DispatchReport",
    "ReplayedReceipt",
    "ReportsApplied",
    "RetryResult",
    "StatusUpdate",
    "SweepReport",
    "CancelResult",
    "batch_complete_if_done",
    "batches_cancel",
    "device_delete",
    "device_register",
    "devices_deactivate",
    "bulk_send",
    "bulk_send_now",
    "dispatch_pending",
    "enqueue_dispatch",
    "logs_apply_status",
    "logs_retry",
    "notify_batch_completed",
    "pushed_reports_apply",
    "pushed_reports_keep",
    "receipt_fingerprint",
    "receipt_token_claim",
    "receipt_tokens_purge",
    "report_as_dict",
    "report_from_dict",
    "reports_apply",
    "suppress_sms_reply",
    "suppressed_keys",
    "suppression_add",
    "sweep_pending",
    "truncate_response",
    "PreferenceChange",
    "preferences_update",
    "unsubscribe",
    "delivery_controls_update",
    "delivery_redeliver",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_recover",
    "endpoint_update",
    "secret_rotate",
]
