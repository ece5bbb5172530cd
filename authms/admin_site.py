from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class AuthmsAdminSite(admin.AdminSite):
    """The staff console: Django's admin with a delivery dashboard on the index page."""

    site_header = _("AuthMS Communication")
    site_title = _("AuthMS Communication")
    index_title = _("Staff console")
    index_template = "admin/authms_index.html"

    def index(self, request, extra_context=None):
        from communication.selectors import delivery_dashboard

        extra = {"dashboard": delivery_dashboard(actor=request.user)} if request.user.is_staff else {}
        return super().index(request, {**extra, **(extra_context or {})})


class AuthmsAdminConfig(AdminConfig):
    """Installs AuthmsAdminSite as the default admin site (INSTALLED_APPS names this)."""

    default_site = "authms.admin_site.AuthmsAdminSite"
