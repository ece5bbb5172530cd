"""Plain pages (not API): the notification bell demo."""

from django.shortcuts import render


def bell_demo(request):
    """The inbox as a bell with its badge, list and live arrivals (static/notifications/bell.js):
    what a product's own front end would do with the API, without a build step or a CDN."""
    return render(request, "notifications/bell.html")
