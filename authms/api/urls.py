from authms.api import views
from authms.api.routing import api_path

urlpatterns = [
    api_path("auth/token", views.TokenObtainView.as_view(), name="auth-token"),
    api_path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    api_path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    api_path("health", views.HealthView.as_view(), name="health"),
]
