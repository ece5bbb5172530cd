from authms.api.routing import api_path
from notifications.api import stream, views

urlpatterns = [
    api_path("notifications", views.NotificationListView.as_view(), name="notifications"),
    api_path(
        "notifications/unread-count", views.UnreadCountView.as_view(), name="notifications-unread-count"
    ),
    api_path("notifications/stream", stream.notification_stream, name="notifications-stream"),
    api_path(
        "notifications/stream-token", views.StreamTokenView.as_view(), name="notifications-stream-token"
    ),
    api_path("notifications/read-all", views.ReadAllView.as_view(), name="notifications-read-all"),
    api_path("notifications/seen", views.SeenView.as_view(), name="notifications-seen"),
    api_path(
        "notifications/archive-read", views.ArchiveReadView.as_view(), name="notifications-archive-read"
    ),
    api_path("notifications/{notification_id}", views.NotificationDetailView.as_view(), name="notification"),
    api_path(
        "notifications/{notification_id}/read", views.NotificationReadView.as_view(), name="notification-read"
    ),
    api_path(
        "notifications/{notification_id}/archive", views.ArchiveView.as_view(), name="notification-archive"
    ),
    api_path(
        "notifications/{notification_id}/unarchive",
        views.UnarchiveView.as_view(),
        name="notification-unarchive",
    ),
    api_path("admin/notifications", views.AdminNotificationCreateView.as_view(), name="admin-notifications"),
]
