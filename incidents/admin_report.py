"""The response-times report as an admin page (/admin/reports/response-times/), with its chart drawn
server-side as inline SVG bars: no script, no CDN, readable with the network cut.

Added to the existing admin site without replacing it: `install()` wraps the site's get_urls (one
URL, through admin_view, so only staff reach it) and get_app_list (a "Response times report" row in
the Incidents section of the index for ADMIN and above). incidents/admin.py calls it.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.rights import may
from config.errors import InvalidInput
from incidents import reports, selectors
from incidents.report_apis import policy_from, window_from

URL_NAME = "report-response-times"
READ_RIGHT = "incidents.view_responsetimesreport"
BAR_WIDTH, BAR_GAP, CHART_HEIGHT, LABEL_SPACE = 64, 16, 160, 36


def _may_read(user) -> bool:
    """The admin's allow-list (accounts/rights.py) names the page like a read-only model: ADMIN and above."""
    return bool(user.is_authenticated and user.is_active and may(getattr(user, "role", ""), READ_RIGHT))


def duration_text(seconds: float | None) -> str:
    """90 -> '1 min 30 s', 5400 -> '1 h 30 min'; '—' when there is nothing to measure."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def bar_chart(bars: list[tuple[str, int]]) -> dict:
    """Geometry for the template's <svg>: every bar's x, y, height, its label and count."""
    tallest = max((count for _, count in bars), default=0) or 1
    drawn = []
    for index, (label, count) in enumerate(bars):
        height = round(CHART_HEIGHT * count / tallest)
        x = BAR_GAP + index * (BAR_WIDTH + BAR_GAP)
        drawn.append(
            {"label": label, "count": count, "x": x, "y": CHART_HEIGHT - height + 16, "height": height, "mid": x + 32}
        )
    width = BAR_GAP + len(bars) * (BAR_WIDTH + BAR_GAP)
    return {"bars": drawn, "width": width, "height": CHART_HEIGHT + 16 + LABEL_SPACE, "bar_width": BAR_WIDTH,
            "baseline": CHART_HEIGHT + 16, "label_y": CHART_HEIGHT + 34}  # fmt: skip


def _as_text(values: reports.Percentiles) -> dict:
    return {key: duration_text(getattr(values, key)) for key in ("p50_seconds", "p90_seconds", "mean_seconds")}


def response_times_view(request):
    if not _may_read(request.user):
        raise PermissionDenied
    error = ""
    try:
        window, policy = window_from(request.GET), policy_from(request.GET)
    except InvalidInput as problem:
        error = problem.message
        window, policy = reports.Window.last_days(), None
    report = reports.response_times(window, policy)
    context = {
        **admin.site.each_context(request),
        "title": _("Response times (MTTA / MTTR)"),
        "report": report,
        "error": error,
        "policies": selectors.policy_list(),
        "chosen_policy": policy.pk if policy else None,
        "mtta": _as_text(report.time_to_acknowledge),
        "mttr": _as_text(report.time_to_resolve),
        "acknowledge_chart": bar_chart(report.acknowledge_distribution),
        "resolve_chart": bar_chart(report.resolve_distribution),
        "people": [{**row, "p50": duration_text(row["p50_seconds"])} for row in report.acknowledged_by],
    }
    return TemplateResponse(request, "admin/incidents/response_times.html", context)


def install(site: admin.AdminSite = admin.site) -> None:
    """Adds the page's URL and its row on the index to `site` (once)."""
    if getattr(site, "_response_times_installed", False):
        return
    site._response_times_installed = True
    original_urls, original_app_list = site.get_urls, site.get_app_list

    def get_urls():
        page = path("reports/response-times/", site.admin_view(response_times_view), name=URL_NAME)
        return [page, *original_urls()]

    def get_app_list(request, app_label=None):
        app_list = original_app_list(request, app_label)
        if not _may_read(request.user):
            return app_list
        for app in app_list:
            if app["app_label"] == "incidents":
                app["models"].append(
                    {
                        "name": gettext_lazy("Response times report (MTTA / MTTR)"),
                        "object_name": "ResponseTimesReport",
                        "perms": {"view": True},
                        "admin_url": reverse(f"{site.name}:{URL_NAME}"),
                        "add_url": None,
                        "view_only": True,
                    }
                )
        return app_list

    site.get_urls, site.get_app_list = get_urls, get_app_list
