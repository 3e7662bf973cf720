"""Admin for what people configure: contacts and escalation policies. The Incident admin lives in
orchestrator/admin.py, because it shows the calls and can escalate, which are the engine's; the
drill and test-call actions are added there too (orchestrator/admin_drills.py), for the same reason."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from accounts.admin import AuditedAdmin
from accounts.models import AuditAction
from incidents.models import Contact, EscalationPolicy, PolicyContact


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th … (1번째, 2번째 … in Korean)."""
    if (get_language() or "").startswith("ko"):
        return f"{number}번째"
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def call_order(policy: EscalationPolicy) -> str:
    """ "1st call: Kim, 2nd: Lee, 3rd: Kim, …" up to max_attempts: the engine goes round the active
    contacts in their order."""
    names = [member.contact.name for member in policy.members.select_related("contact") if member.contact.active]
    if not names:
        return _("Nobody: the policy has no active contact, so an incident would be exhausted at once.")
    calls = [names[step % len(names)] for step in range(policy.max_attempts)]
    first = _("%(nth)s call: %(name)s") % {"nth": ordinal(1), "name": calls[0]}
    rest = [f"{ordinal(step)}: {name}" for step, name in enumerate(calls[1:], start=2)]
    return ", ".join([first, *rest])


class PolicyContactForm(forms.ModelForm):
    """Positions are shown and typed from 1 (the first person called); stored from 0."""

    order = forms.IntegerField(min_value=1, label=gettext_lazy("Order"), help_text=gettext_lazy("1 is called first"))

    class Meta:
        model = PolicyContact
        fields = ["order", "contact"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["order"] = self.instance.position + 1

    def save(self, commit=True):
        self.instance.position = self.cleaned_data["order"] - 1
        return super().save(commit)


class PolicyContactFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """Said before Django's own duplicate check, whose "Please correct the duplicate data" names no
        one."""
        seen: dict[int, str] = {}
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            contact = form.cleaned_data.get("contact")
            if contact is None:
                continue
            if contact.pk in seen:
                raise ValidationError(
                    _("%(name)s is listed twice: a policy lists each person once (calls already go round the list).")
                    % {"name": contact.name},
                    code="duplicate_contact",
                )
            seen[contact.pk] = contact.name
        super().clean()


class PolicyContactInline(admin.TabularInline):
    model = PolicyContact
    form = PolicyContactForm
    formset = PolicyContactFormSet
    extra = 1
    ordering = ("position", "pk")
    autocomplete_fields = ("contact",)
    verbose_name = gettext_lazy("person to call")
    verbose_name_plural = gettext_lazy("people to call, in order")


@admin.register(Contact)
class ContactAdmin(AuditedAdmin):
    audit_action = AuditAction.CONTACT_CHANGED
    list_display = ("name", "phone", "language", "preferred_provider", "active", "user")
    list_filter = ("active", "language", "preferred_provider")
    search_fields = ("name", "phone", "user__username")
    readonly_fields = ("in_policies",)

    @admin.display(description=gettext_lazy("In policies"))
    def in_policies(self, contact: Contact):
        memberships = contact.memberships.select_related("policy").order_by("policy__name")
        if contact.pk is None or not memberships:
            return _("None yet")
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (
                    reverse("admin:incidents_escalationpolicy_change", args=[member.policy_id]),
                    member.policy.name,
                    _("%(nth)s in order") % {"nth": ordinal(member.position + 1)},
                )
                for member in memberships
            ),
        )


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedAdmin):
    audit_action = AuditAction.POLICY_CHANGED
    list_display = (
        "name",
        "is_default",
        "people",
        "max_attempts",
        "ring_timeout_seconds",
        "pause_seconds",
        "message_repeats",
    )
    list_filter = ("is_default",)
    search_fields = ("name",)
    inlines = [PolicyContactInline]
    readonly_fields = ("call_order",)

    @admin.display(description=gettext_lazy("People, in order"))
    def people(self, policy: EscalationPolicy) -> str:
        return ", ".join(member.contact.name for member in policy.members.select_related("contact")) or "—"

    @admin.display(description=gettext_lazy("Call order"))
    def call_order(self, policy: EscalationPolicy):
        if policy.pk is None:
            return _("Shown once the policy is saved.")
        return format_html("<strong>{}</strong>", call_order(policy))

    def save_related(self, request, form, formsets, change):
        """Positions end up 0, 1, 2 … in the order shown (gaps and ties from the form are closed)."""
        super().save_related(request, form, formsets, change)
        members = list(PolicyContact.objects.filter(policy=form.instance).order_by("position", "pk"))
        for position, member in enumerate(members):
            if member.position != position:
                PolicyContact.objects.filter(pk=member.pk).update(position=position)


# The response-times report page (/admin/reports/response-times/) and its row on the index.
from incidents.admin_report import install as install_response_times_report  # noqa: E402

install_response_times_report()
