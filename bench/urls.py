"""The service's URLs plus the stock-DRF baseline views the benchmarks compare against."""

from django.db import models
from django.urls import path
from rest_framework import generics, pagination, serializers

from authms.urls import urlpatterns as service_urlpatterns


class PlainLog(models.Model):
    """The same rows in a table with only a primary key (bench_log_plain)."""

    id = models.CharField(max_length=30, primary_key=True)
    tenant_id = models.CharField(max_length=30)
    user_id = models.CharField(max_length=30)
    channel = models.CharField(max_length=10)
    provider = models.CharField(max_length=32)
    recipient = models.CharField(max_length=320)
    content = models.TextField()
    status = models.CharField(max_length=10)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "bench_log_plain"
        app_label = "communication"


class PlainLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlainLog
        fields = "__all__"


class StockPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class BaselineUserLogs(generics.ListAPIView):
    serializer_class = PlainLogSerializer
    pagination_class = StockPagination

    def get_queryset(self):
        user = self.request.user
        return PlainLog.objects.filter(tenant_id=user.tenant_id, user_id=user.id).order_by(
            "-created_at", "-id"
        )


class BaselineAdminLogs(BaselineUserLogs):
    def get_queryset(self):
        queryset = PlainLog.objects.filter(tenant_id=self.request.user.tenant_id).order_by(
            "-created_at", "-id"
        )
        if status := self.request.query_params.get("status"):
            queryset = queryset.filter(status=status)
        return queryset


class HqNotification(models.Model):
    """django-notifications-hq's shape: recipient, unread flag, timestamp (bench_hq_notification)."""

    recipient_id = models.CharField(max_length=30)
    unread = models.BooleanField()
    timestamp = models.DateTimeField()
    verb = models.CharField(max_length=255)
    description = models.TextField()
    level = models.CharField(max_length=20)

    class Meta:
        managed = False
        db_table = "bench_hq_notification"
        app_label = "notifications"


urlpatterns = [
    *service_urlpatterns,
    path("bench/baseline/logs", BaselineUserLogs.as_view()),
    path("bench/baseline/admin-logs", BaselineAdminLogs.as_view()),
]
