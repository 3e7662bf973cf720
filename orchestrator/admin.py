"""Admin for the engine's records, and for incidents.

The Incident admin is here rather than in incidents/admin.py because it shows the calls placed
(CallAttempt) and its actions escalate through the engine: the record (incidents) never imports the
engine (orchestrator). The model stays incidents.Incident, so its admin URL and the role allow-list
(accounts/rights.py, keyed by app_label.model) are unchanged."""

from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.admin import ReadOnlyAdmin
from accounts.audit import actor_name
from config.errors import DomainError
from incidents import services
from incidents.models import Alert, Incident, IncidentState
from orchestrator import admin_drills  # noqa: F401  (adds the drill actions to policies and contacts)
from orchestrator.admin_display import duration, timeline, when
from orchestrator.models import CallAttempt
from orchestrator.services import escalate_now
from orchestrator.words import actor_words, call_words, drill_badge, state_badge, state_words


@admin.register(CallAttempt)
class CallAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "incident",
        "step",
        "contact",
        "to_number",
        "provider",
        "status",
        "answered_by",
        "digits",
        "created_at",
    )
    list_filter = ("status", "provider", "answered_by")
    search_fields = ("to_number", "provider_call_id", "contact__name", "incident__summary")
    readonly_fields = [field.name for field in CallAttempt._meta.fields if field.name != "token"]
    exclude = ("token",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class CallAttemptInline(ReadOnlyInline):
    model = CallAttempt
    verbose_name = gettext_lazy("call")
    verbose_name_plural = gettext_lazy("calls")
    fields = ("step", "contact", "to_number", "provider", "outcome", "error", "dialed", "ended")
    readonly_fields = fields
    ordering = ("step",)

    @admin.display(description=gettext_lazy("Outcome"))
    def outcome(self, attempt: CallAttempt) -> str:
        return call_words(attempt)

    @admin.display(description=gettext_lazy("Dialed"))
    def dialed(self, attempt: CallAttempt) -> str:
        return when(attempt.dialed_at)

    @admin.display(description=gettext_lazy("Ended"))
    def ended(self, attempt: CallAttempt) -> str:
        return when(attempt.ended_at)


class AlertInline(ReadOnlyInline):
    model = Alert
    classes = ("collapse",)
    fields = ("received_at", "source", "status", "received_by", "payload")
    readonly_fields = fields


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    """The page a lead watches: state in colour, who is being called and when the next call goes,
    the timeline in words, and actions that say per incident what they did."""

    list_display = (
        "number",
        "summary_with_drill",
        "state_badge",
        "policy",
        "calling_now",
        "next_call",
        "acknowledged",
        "opened",
    )
    list_display_links = ("number", "summary_with_drill")
    list_filter = ("state", "is_drill", "severity", "source", "policy")
    list_select_related = ("policy",)
    search_fields = ("summary", "dedup_key", "acknowledged_by")
    date_hierarchy = "created_at"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "state_badge",
                    "summary_with_drill",
                    "policy",
                    "calling_now",
                    "next_call",
                    "acknowledged_by_person",
                    "time_to_acknowledge",
                    "exhausted_reason",
                )
            },
        ),
        (gettext_lazy("Timeline"), {"fields": ("timeline",)}),
        (
            gettext_lazy("Details"),
            {
                "classes": ("collapse",),
                "fields": (
                    "tts_text",
                    "severity",
                    "source",
                    "dedup_key",
                    "current_step",
                    "opened",
                    "resolved",
                ),
            },
        ),
    )
    readonly_fields = (
        "state_badge",
        "summary_with_drill",
        "policy",
        "calling_now",
        "next_call",
        "acknowledged_by_person",
        "time_to_acknowledge",
        "exhausted_reason",
        "timeline",
        "tts_text",
        "severity",
        "source",
        "dedup_key",
        "current_step",
        "opened",
        "resolved",
    )
    inlines = [CallAttemptInline, AlertInline]
    actions = ["acknowledge_selected", "resolve_selected", "escalate_selected"]

    class Media:
        css = {"all": ("oncall/states.css", "oncall/admin.css")}
        js = ("oncall/refresh.js",)

    # Read-only (ReadOnlyAdmin): the engine owns a live incident's row, and a full-row save from a
    # form opened a minute ago would revert what the engine wrote since (state, step, deadline).
    # Incidents open through the ingestion service (the API, or an alert), and change only through
    # the actions, which call the services (and so the audit log).

    def get_queryset(self, request):
        calling = CallAttempt.objects.filter(incident=OuterRef("pk"), step=OuterRef("current_step"))
        return super().get_queryset(request).annotate(calling_name=Subquery(calling.values("contact__name")[:1]))

    # --- columns ----------------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("#"), ordering="pk")
    def number(self, incident: Incident) -> str:
        return f"#{incident.pk}"

    @admin.display(description=gettext_lazy("Summary"), ordering="summary")
    def summary_with_drill(self, incident: Incident):
        if incident.is_drill:
            return format_html("{} {}", drill_badge(), incident.summary)
        return incident.summary

    @admin.display(description=gettext_lazy("State"), ordering="state")
    def state_badge(self, incident: Incident):
        return state_badge(incident.state)

    @admin.display(description=gettext_lazy("Calling now"))
    def calling_now(self, incident: Incident):
        name = getattr(incident, "calling_name", None)
        if incident.state != IncidentState.TRIGGERED or not name:
            return labelled(_("Calling now"), None)
        return labelled(_("Calling now"), _("%(name)s (call %(step)d)") % {"name": name, "step": incident.current_step})

    @admin.display(description=gettext_lazy("Next call at"), ordering="next_action_at")
    def next_call(self, incident: Incident):
        if incident.state != IncidentState.TRIGGERED:
            return labelled(_("Next call at"), None)
        return labelled(_("Next call at"), when(incident.next_action_at))

    @admin.display(description=gettext_lazy("Acknowledged by"), ordering="acknowledged_by")
    def acknowledged_by_person(self, incident: Incident) -> str:
        return actor_words(incident.acknowledged_by) if incident.acknowledged_by else "—"

    @admin.display(description=gettext_lazy("Acknowledged by, after"), ordering="acknowledged_at")
    def acknowledged(self, incident: Incident):
        """Who, and how long after the incident opened: one column, so the list fits beside its filters."""
        if incident.acknowledged_at is None:
            return labelled(_("Acknowledged by"), None)
        who = f"{self.acknowledged_by_person(incident)} · {self.time_to_acknowledge(incident)}"
        return labelled(_("Acknowledged by"), who)

    @admin.display(description=gettext_lazy("Time to acknowledge"))
    def time_to_acknowledge(self, incident: Incident) -> str:
        if incident.acknowledged_at is None:
            return "—"
        return duration(incident.acknowledged_at - incident.created_at)

    @admin.display(description=gettext_lazy("Opened"), ordering="created_at")
    def opened(self, incident: Incident) -> str:
        today = timezone.localdate() == timezone.localtime(incident.created_at).date()
        return when(incident.created_at, with_date=not today)

    @admin.display(description=gettext_lazy("Resolved"), ordering="resolved_at")
    def resolved(self, incident: Incident) -> str:
        return when(incident.resolved_at, with_date=True)

    @admin.display(description=gettext_lazy("Timeline"))
    def timeline(self, incident: Incident):
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("When"),
            _("What"),
            _("Who"),
            _("Channel"),
            _("Call"),
        )
        rows = format_html_join(
            "",
            '<tr><td class="oc-when">{}</td><td><strong>{}</strong> {}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((row.at, row.what, row.detail, row.who, row.channel, row.call) for row in timeline(incident)),
        )
        return format_html('<table class="oc-timeline"><thead>{}</thead><tbody>{}</tbody></table>', head, rows)

    # --- actions ----------------------------------------------------------------------------------

    def _each(self, request, queryset, act) -> None:
        """One message per incident, saying what happened to it."""
        actor = actor_name(request.user)
        for incident_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                text, done = act(incident_id, actor)
            except DomainError as exc:
                text, done = _("#%(id)d: %(why)s; nothing done") % {"id": incident_id, "why": exc.message}, False
            self.message_user(request, text, level=messages.SUCCESS if done else messages.WARNING)

    @admin.action(description=gettext_lazy("Acknowledge (stop calling)"))
    def acknowledge_selected(self, request, queryset):
        self._each(request, queryset, acknowledge_one)

    @admin.action(description=gettext_lazy("Resolve"))
    def resolve_selected(self, request, queryset):
        self._each(request, queryset, resolve_one)

    @admin.action(description=gettext_lazy("Escalate now (call the next contact)"))
    def escalate_selected(self, request, queryset):
        self._each(request, queryset, escalate_one)

    # --- the same actions as buttons on an incident's page ----------------------------------------

    def get_urls(self):
        own = [
            path(
                "<int:incident_id>/do/<str:what>/",
                self.admin_site.admin_view(self.act_view),
                name="incidents_incident_act",
            )
        ]
        return own + super().get_urls()

    def act_view(self, request, incident_id: int, what: str):
        act = PAGE_ACTIONS.get(what)
        if request.method != "POST" or act is None:
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("incidents.change_incident"):
            raise PermissionDenied
        if what == "escalate":  # the page's button carries the call its reader saw: a double click escalates once
            step = request.POST.get("step", "")
            act = partial(escalate_one, from_step=int(step) if step.isdigit() else None)
        self._each(request, Incident.objects.filter(pk=incident_id), act)
        return HttpResponseRedirect(reverse("admin:incidents_incident_change", args=[incident_id]))


def labelled(label: str, value: str | None):
    """A list cell that names its column before the value. The name shows only on a phone, where the
    list's rows are stacked without a header (oncall/admin.css); an empty cell ("—") is hidden there."""
    if not value:
        return mark_safe('<span class="oc-none">—</span>')
    return format_html('<span class="oc-label">{}: </span>{}', label, value)


def _already(incident_id: int, state: str) -> str:
    return _("#%(id)d was already %(state)s: nothing done") % {"id": incident_id, "state": state_words(state).lower()}


def acknowledge_one(incident_id: int, actor: str) -> tuple[str, bool]:
    before = Incident.objects.filter(pk=incident_id).values_list("state", flat=True).first()
    if before in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
        return _already(incident_id, before), False
    services.acknowledge(incident_id, actor=actor, via="admin")
    return _("#%(id)d acknowledged: calls stopped") % {"id": incident_id}, True


def resolve_one(incident_id: int, actor: str) -> tuple[str, bool]:
    before = Incident.objects.filter(pk=incident_id).values_list("state", flat=True).first()
    if before == IncidentState.RESOLVED:
        return _already(incident_id, before), False
    services.resolve(incident_id, actor=actor, via="admin")
    return _("#%(id)d resolved") % {"id": incident_id}, True


def escalate_one(incident_id: int, actor: str, from_step: int | None = None) -> tuple[str, bool]:
    before = Incident.objects.filter(pk=incident_id).values_list("state", flat=True).first()
    if before in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
        return (
            _("#%(id)d is %(state)s: only a calling or exhausted incident escalates; nothing done")
            % {"id": incident_id, "state": state_words(before).lower()},
            False,
        )
    try:
        attempt = escalate_now(incident_id, actor=actor, from_step=from_step)
    except DomainError:
        return _("#%(id)d was already escalated by someone (or a second click): nothing done") % {
            "id": incident_id
        }, False
    if attempt is not None:
        words = _("a new round of calls started") if before == IncidentState.EXHAUSTED else _("escalated")
        return (
            _("#%(id)d %(words)s: calling %(name)s now (call %(step)d)")
            % {"id": incident_id, "words": words, "name": attempt.contact.name, "step": attempt.step},
            True,
        )
    after = Incident.objects.get(pk=incident_id)
    if after.state == IncidentState.EXHAUSTED:
        return _("#%(id)d: every call of this round was made, so it is now exhausted") % {"id": incident_id}, True
    return _("#%(id)d: no new call was placed (%(state)s)") % {
        "id": incident_id,
        "state": state_words(after.state).lower(),
    }, False


PAGE_ACTIONS = {"acknowledge": acknowledge_one, "resolve": resolve_one, "escalate": escalate_one}
