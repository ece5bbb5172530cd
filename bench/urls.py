"""The service's URLs plus the stock-DRF views and stock admin the benchmarks compare against."""

import django_filters
from django.contrib import admin
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics, pagination, serializers

from authms.urls import urlpatterns as service_urlpatterns
from communication.api.views import AdminCommunicationLogListView, CommunicationLogListView
from communication.models import CommunicationLog


class StockLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommunicationLog
        fields = "__all__"


class StockLogFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = CommunicationLog
        fields = ["channel", "status", "status_detail", "batch_id", "user_id", "provider", "recipient"]


class StockPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class StockUserLogs(generics.ListAPIView):
    """Stock DRF over the same table and indexes: ListAPIView, django-filter, a ModelSerializer
    and PageNumberPagination (an exact COUNT for every page)."""

    serializer_class = StockLogSerializer
    pagination_class = StockPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = StockLogFilter

    def get_queryset(self):
        user = self.request.user
        return CommunicationLog.objects.filter(tenant_id=user.tenant_id, user_id=user.id)


class StockAdminLogs(StockUserLogs):
    def get_queryset(self):
        return CommunicationLog.objects.filter(tenant_id=self.request.user.tenant_id)


class _ExactCount:
    """Ours, but every page counts every matching row (the paginator before maintained counts)."""

    def count_rows(self, log_list):
        return log_list.queryset.count(), False

    def page_and_total(self, log_list, offset, size):
        return None  # the page, then count_rows above


class ExactCountUserLogs(_ExactCount, CommunicationLogListView):
    pass


class ExactCountAdminLogs(_ExactCount, AdminCommunicationLogListView):
    pass


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
    path("bench/stock/logs", StockUserLogs.as_view()),
    path("bench/stock/admin-logs", StockAdminLogs.as_view()),
    path("bench/exact-count/logs", ExactCountUserLogs.as_view()),
    path("bench/exact-count/admin-logs", ExactCountAdminLogs.as_view()),
    path("bench/stock-admin/", stock_admin.urls),
]
