"""Server-rendered status pages for responders (thin: a selector or a service, then a template)."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import audit
from accounts.models import AuditAction, Role
from config.errors import NotFound
from console import selectors, services
from console.access import person_page, public_page
from console.forms import SignInForm
from console.signin import SignInRefused, sign_in

REFRESH_CHOICES = (15, 30, 60)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    """Only a path of the status pages: never another site, never the API."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/status/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _refresh_seconds(request: HttpRequest) -> int | None:
    value = request.GET.get("refresh", "")
    return int(value) if value.isdigit() and int(value) in REFRESH_CHOICES else None


@public_page
@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    home = reverse("console:incidents")
    if request.method == "GET" and request.user.is_authenticated:
        return HttpResponseRedirect(_safe_next(request, home))
    form = SignInForm(request.POST if request.method == "POST" else None)
    status, error, retry_after = 200, "", None
    if request.method == "POST" and form.is_valid():
        try:
            sign_in(
                request,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                code=form.cleaned_data["code"],
            )
            return HttpResponseRedirect(_safe_next(request, home))
        except SignInRefused as refused:
            status, error, retry_after = refused.status, refused.message, refused.retry_after
    response = render(
        request,
        "console/login.html",
        {"form": form, "error": error, "next": _safe_next(request, "")},
        status=status,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@person_page(Role.VIEWER)
@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    audit.record(AuditAction.LOGOUT, actor=request.user, target=f"user:{request.user.get_username()}")
    logout(request)
    return HttpResponseRedirect(reverse("console:login"))


@person_page(Role.VIEWER)
@require_GET
def incident_list(request: HttpRequest) -> HttpResponse:
    refresh = _refresh_seconds(request)
    return render(
        request,
        "console/incident_list.html",
        {
            "rows": selectors.open_incidents(request.user),
            "refresh": refresh,
            "refresh_choices": REFRESH_CHOICES,
            "here": request.get_full_path(),
        },
    )


@person_page(Role.VIEWER)
@require_GET
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    try:
        story = selectors.incident_story(incident_id, request.user)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    return render(
        request,
        "console/incident_detail.html",
        {
            "view": story,
            "refresh": _refresh_seconds(request),
            "refresh_choices": REFRESH_CHOICES,
            "here": request.get_full_path(),
        },
    )


def _act(request: HttpRequest, incident_id: int, action) -> HttpResponse:
    try:
        outcome = action(incident_id, user=request.user)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    (messages.success if outcome.changed else messages.warning)(request, outcome.message)
    return HttpResponseRedirect(_safe_next(request, reverse("console:incident", args=[incident_id])))


@person_page(Role.AGENT)
@require_POST
def acknowledge(request: HttpRequest, incident_id: int) -> HttpResponse:
    return _act(request, incident_id, services.acknowledge)


@person_page(Role.AGENT)
@require_POST
def resolve(request: HttpRequest, incident_id: int) -> HttpResponse:
    return _act(request, incident_id, services.resolve)


@person_page(Role.AGENT)
@require_POST
def escalate(request: HttpRequest, incident_id: int) -> HttpResponse:
    step = request.POST.get("step", "")
    from_step = int(step) if step.isdigit() and len(step) < 6 else None  # the call the page showed
    return _act(request, incident_id, partial(services.escalate, from_step=from_step))
