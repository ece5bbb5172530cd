"""The service's URLs plus the stock-DRF views and stock admin the benchmarks compare against."""

from django.contrib import admin
from django.db import models
from django.urls import path
from rest_framework import generics, pagination, serializers

from authms.urls import urlpatterns as service_urlpatterns
from communication.models import CommunicationLog


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


class StockLogAdmin(admin.ModelAdmin):
    """Stock Django admin over the logs: the service's columns, filters, search fields and date
    hierarchy, scoped to the staff member's tenant, with Django's paginator and counts."""

    list_display = ["created_at", "recipient", "user", "channel", "status", "provider", "error", "id"]
    list_filter = ["channel", "status", "status_detail", "provider", "created_at"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "=batch_id", "=provider_message_id", "=recipient"]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).filter(tenant_id=request.user.tenant_id)

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


stock_admin = admin.AdminSite(name="stock")
stock_admin.register(CommunicationLog, StockLogAdmin)

urlpatterns = [
    *service_urlpatterns,
    path("bench/baseline/logs", BaselineUserLogs.as_view()),
    path("bench/baseline/admin-logs", BaselineAdminLogs.as_view()),
    path("bench/stock-admin/", stock_admin.urls),
]
