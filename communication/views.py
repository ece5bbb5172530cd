"""Plain pages (not API): the Web Push demo."""

from django.conf import settings
from django.shortcuts import render


def push_demo(request):
    """A page that subscribes this browser to Web Push and registers it as the signed-in user's
    device (static/push/demo.js; its service worker: push_worker)."""
    return render(request, "push/demo.html", {"vapid_public_key": settings.VAPID_PUBLIC_KEY})


def push_worker(request):
    """The demo's service worker, served under /push/ so its scope covers the demo page."""
    response = render(request, "push/sw.js", content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response
