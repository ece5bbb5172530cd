from authms.api.routing import api_path
from communication.api import email_webhooks, views

urlpatterns = [
    api_path("communication/logs", views.CommunicationLogListView.as_view(), name="communication-logs"),
    api_path(
        "admin/communication/logs",
        views.AdminCommunicationLogListView.as_view(),
        name="admin-communication-logs",
    ),
    api_path("communication/bulk", views.BulkSendView.as_view(), name="communication-bulk"),
    api_path("communication/batches/{batch_id}", views.BatchDetailView.as_view(), name="communication-batch"),
    api_path(
        "communication/batches/{batch_id}/cancel",
        views.BatchCancelView.as_view(),
        name="communication-batch-cancel",
    ),
    api_path("communication/cancel", views.CancelByKeyView.as_view(), name="communication-cancel"),
    api_path(
        "communication/unsubscribe/{token}", views.UnsubscribeView.as_view(), name="communication-unsubscribe"
    ),
    api_path("admin/usage", views.UsageView.as_view(), name="admin-usage"),
    api_path("preferences", views.PreferencesView.as_view(), name="preferences"),
    api_path("events", views.EventListView.as_view(), name="events"),
    api_path("events/{event_id}", views.EventDetailView.as_view(), name="event"),
    api_path("webhooks/endpoints", views.WebhookEndpointListView.as_view(), name="webhook-endpoints"),
    api_path(
        "webhooks/endpoints/{endpoint_id}", views.WebhookEndpointDetailView.as_view(), name="webhook-endpoint"
    ),
    api_path(
        "webhooks/endpoints/{endpoint_id}/rotate-secret",
        views.WebhookRotateView.as_view(),
        name="webhook-rotate",
    ),
    api_path(
        "webhooks/endpoints/{endpoint_id}/recover", views.WebhookRecoverView.as_view(), name="webhook-recover"
    ),
    api_path(
        "webhooks/endpoints/{endpoint_id}/deliveries",
        views.WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    api_path(
        "webhooks/deliveries/{delivery_id}/redeliver",
        views.WebhookRedeliverView.as_view(),
        name="webhook-redeliver",
    ),
    api_path("admin/delivery-controls", views.DeliveryControlsView.as_view(), name="admin-delivery-controls"),
    api_path("devices", views.DeviceListView.as_view(), name="devices"),
    api_path("devices/{device_id}", views.DeviceDetailView.as_view(), name="device"),
    api_path("providers/submail/subhook", views.SubmailSubhookView.as_view(), name="submail-subhook"),
    api_path(
        "providers/{provider}/receipts/{token}",
        views.ProviderReceiptsView.as_view(),
        name="provider-receipts",
    ),
    api_path(
        "providers/{provider}/replies/{token}",
        views.ProviderRepliesView.as_view(),
        name="provider-replies",
    ),
]
urlpatterns += email_webhooks.urlpatterns
