from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from authms.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdmin
from authms.audit import staff_action_record
from authms.errors import ApplicationError
from authms.models import Tenant, User
from notifications.models import Notification, NotificationType, Priority
from notifications.services import notify


class SendNotificationForm(forms.Form):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.all(), required=False, help_text=_("Platform admins only.")
    )
    whole_tenant = forms.BooleanField(required=False, label=_("Everyone in the tenant"))
    users = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False)
    type = forms.ChoiceField(choices=NotificationType.choices, initial=NotificationType.SYSTEM)
    event_type = forms.CharField(initial="system.announcement", max_length=100)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.MEDIUM)
    title = forms.CharField(max_length=200)
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    action_url = forms.CharField(required=False, help_text=_("A path such as /security, or an https:// URL."))

    def __init__(self, *args, staff, **kwargs):
        super().__init__(*args, **kwargs)
        users = User.objects.filter(is_active=True).select_related("tenant").order_by("username")
        if staff.is_superuser:
            # Platform admins see users of every tenant: say whose each one is.
            self.fields["users"].label_from_instance = lambda user: f"{user.username} ({user.tenant.name})"
        else:
            users = users.filter(tenant_id=staff.tenant_id)
            del self.fields["tenant"]
        self.fields["users"].queryset = users

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("whole_tenant") and not cleaned.get("users"):
            raise forms.ValidationError(_("Choose users, or send to everyone in the tenant."))
        return cleaned


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["title", "user", "type", "priority", "is_read", "created_at"]
    list_filter = ["type", "priority", "is_read"]
    list_select_related = ["user"]
    search_fields = ["title", "=id", "=user__username"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Notification._meta.fields]

    # Rows are created by the send form below, through notify(); they are never edited.

    def get_urls(self):
        send = path(
            "send/", self.admin_site.admin_view(self.send_view), name="notifications_notification_send"
        )
        return [send, *super().get_urls()]

    def send_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SendNotificationForm(request.POST or None, staff=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            tenant_id = data["tenant"].id if data.get("tenant") else request.user.tenant_id
            try:
                created = notify(
                    tenant_id=tenant_id,
                    user_ids=[user.id for user in data["users"]],
                    whole_tenant=data["whole_tenant"],
                    type=data["type"],
                    event_type=data["event_type"],
                    priority=data["priority"],
                    title=data["title"],
                    content=data["content"],
                    action_url=data["action_url"] or None,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                staff_action_record(
                    actor=request.user,
                    action=f"Sent notification {data['title']!r} to {created} users of tenant {tenant_id}",
                )
                self.message_user(
                    request, _("Sent %(count)d notifications.") % {"count": created}, messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send notification"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/notifications/notification/send.html", context)
