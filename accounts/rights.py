"""What each role may do in the Django admin: an allow-list of our own models and actions.

Anything not named here is refused, whoever asks: third-party models (token tables, lockout rows,
the beat schedule, groups), secrets at rest (MFA devices, recovery codes), and any model added later
until someone decides who may see it. The model admins may narrow these rights further (read-only
fields, no add form); they never widen them.
"""

from __future__ import annotations

from accounts.models import Role

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
EVERYTHING = frozenset({VIEW, ADD, CHANGE, DELETE})
READ_ONLY = frozenset({VIEW})

_ADMIN_RIGHTS: dict[str, frozenset[str]] = {
    # people are deactivated, not deleted, so their audit trail keeps its names
    "accounts.user": frozenset({VIEW, ADD, CHANGE}),
    # add: the admin's form shows the new key once; change: revoke
    "accounts.apikey": frozenset({VIEW, ADD, CHANGE}),
    "accounts.auditevent": READ_ONLY,
    "accounts.loginsession": READ_ONLY,
    "incidents.contact": EVERYTHING,
    "incidents.escalationpolicy": EVERYTHING,
    "incidents.policycontact": EVERYTHING,
    # an incident is the record of a page: it is acknowledged or resolved, never deleted
    "incidents.incident": frozenset({VIEW, ADD, CHANGE}),
    "incidents.alert": READ_ONLY,
    "incidents.incidentevent": READ_ONLY,
    # not a model: the response-times report page (incidents/admin_report.py), people's response times
    "incidents.responsetimesreport": READ_ONLY,
    "orchestrator.callattempt": READ_ONLY,
    "integrations.integration": EVERYTHING,
    "integrations.outboundmessage": frozenset({VIEW, CHANGE}),  # change: retry
    "integrations.deliveryattempt": READ_ONLY,
    # metadata and a player (through the audited download path); change: the legal-hold actions
    "recordings.recording": frozenset({VIEW, CHANGE}),
    "monitoring.alertrule": EVERYTHING,
    "monitoring.ruleseries": READ_ONLY,  # shown inside its rule's page
}

ADMIN_SITE_RIGHTS: dict[str, dict[str, frozenset[str]]] = {
    Role.ADMIN: _ADMIN_RIGHTS,
    Role.SUPER_ADMIN: _ADMIN_RIGHTS | {"accounts.user": EVERYTHING},
}


def _split(perm: str) -> tuple[str, str]:
    """'incidents.change_contact' -> ('incidents.contact', 'change')."""
    app_label, _, codename = perm.partition(".")
    action, _, model_name = codename.partition("_")
    return f"{app_label}.{model_name}", action


def may(role: str, perm: str) -> bool:
    model, action = _split(perm)
    return action in ADMIN_SITE_RIGHTS.get(role, {}).get(model, frozenset())


def may_enter_app(role: str, app_label: str) -> bool:
    return any(model.startswith(f"{app_label}.") for model in ADMIN_SITE_RIGHTS.get(role, {}))
