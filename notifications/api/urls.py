from authms.api.routing import api_path
from notifications.api import views

urlpatterns = [
    api_path("notifications", views.NotificationListView.as_view(), name="notifications"),
    api_path(
        "notifications/unread-count", views.UnreadCountView.as_view(), name="notifications-unread-count"
    ),
    api_path("notifications/read-all", views.ReadAllView.as_view(), name="notifications-read-all"),
    api_path("notifications/{notification_id}", views.NotificationDetailView.as_view(), name="notification"),
    api_path(
        "notifications/{notification_id}/read", views.NotificationReadView.as_view(), name="notification-read"
    ),
    api_path("admin/notifications", views.AdminNotificationCreateView.as_view(), name="admin-notifications"),
]
