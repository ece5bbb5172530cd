from authms.api.routing import api_path
from communication.api import views

urlpatterns = [
    api_path("communication/logs", views.CommunicationLogListView.as_view(), name="communication-logs"),
    api_path(
        "admin/communication/logs",
        views.AdminCommunicationLogListView.as_view(),
        name="admin-communication-logs",
    ),
]
