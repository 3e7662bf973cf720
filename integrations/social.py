"""Incoming social messages (Messenger, Instagram, X) become chat logs in recordings, and may open an
incident. Shared by every social provider: the provider verifies its webhook, reads each customer
message out of its platform's shape, and calls

    record_incoming_message(
        integration,              # the Integration the webhook came in on
        *,
        channel: str,             # "messenger", "instagram" or "x" (SOCIAL_CHANNELS)
        account_id: str,          # our side: the Facebook Page, the Instagram account, our X account
        sender_id: str,           # the customer's id on the platform (PSID, IGSID, X user id)
        sender_name: str = "",    # a display name or @handle, when the platform sends one
        text: str,
        external_id: str,         # the platform's id of this message (Meta's mid, X's DM event id)
        sent_at: datetime,        # aware
    ) -> IncomingOutcome

and validates its options with `incident_rule_problems(options)` in check_integration.

- Idempotent by (channel, external_id): a redelivered webhook adds nothing. The open chat's lines
  carry the id (recordings' ChatMessage.external_id, unique); a stored log's lines are deleted, so
  the id is also remembered in Redis for SOCIAL_DEDUP_SECONDS (3 days) after the line committed.
- One open chat log per conversation: a Recording of kind chat with session_id
  "<channel>:<account_id>:<sender_id>", customer_id the sender, agent_id "integration:<slug>". The
  first message opens it; `close_idle_conversations` (beat task integrations.close_idle_social_chats)
  closes the ones quiet for SOCIAL_CHAT_IDLE_SECONDS (30 min), and recordings stores them encrypted.
- Incident rules, options["incident_rules"]: a list of {"keywords": [...], "senders": [...],
  "policy": name or id, "severity": ...}. A rule matches when the text contains one of its keywords
  (case-insensitive; none listed: any text) and the sender is listed by id or @handle (none listed:
  anyone); it needs keywords or senders. The first match opens an incident (incidents.services, as
  alert intake does) with one dedup key per conversation, so ten such messages ring once.

The line and its incident are written in one transaction: a crash between them leaves neither, and
the provider's redelivery does both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from config.errors import DomainError
from config.redis import redis_client
from incidents import selectors as incident_selectors
from incidents import services as incident_services
from incidents.models import Severity, Source
from integrations.models import Integration
from recordings import services as recording_services
from recordings.models import ChatMessage, Kind, Recording, Status

logger = logging.getLogger(__name__)

SOCIAL_CHANNELS = ("messenger", "instagram", "x")
CHANNEL_NAMES = {"messenger": "Messenger", "instagram": "Instagram", "x": "X"}
AGENT_PREFIX = "integration:"
DEFAULT_IDLE_SECONDS = 1800.0
DEFAULT_DEDUP_SECONDS = 3 * 24 * 3600
SEEN_KEY_PREFIX = "oncall:social-seen"
EXTERNAL_ID_MAX = ChatMessage._meta.get_field("external_id").max_length
SESSION_ID_MAX = Recording._meta.get_field("session_id").max_length
DEDUP_KEY_MAX = 255
SUMMARY_TEXT_CHARS = 200
DEFAULT_SEVERITY = Severity.HIGH
RULE_KEYS = frozenset({"keywords", "senders", "policy", "severity"})
MAX_RULES = 50
MAX_RULE_ITEMS = 200
MAX_ITEM_CHARS = 200
SUMMARIES = {
    "ko": "{channel} 메시지, 보낸 사람 {sender}: {text}",
    "en": "{channel} message from {sender}: {text}",
}


@dataclass(frozen=True)
class IncomingOutcome:
    """What one incoming message did: recorded (False: a redelivery, nothing added), the chat log it
    went to, and the incident a rule opened or joined."""

    recorded: bool
    recording_id: int | None = None
    incident_id: int | None = None
    incident_created: bool = False


def conversation_id(channel: str, account_id: str, sender_id: str) -> str:
    """The chat log's session_id: one conversation per (channel, our account, customer)."""
    session = f"{channel}:{account_id}:{sender_id}"
    return session if len(session) <= SESSION_ID_MAX else f"{channel}:sha256:{_digest(session)}"


def record_incoming_message(
    integration: Integration,
    *,
    channel: str,
    account_id: str,
    sender_id: str,
    sender_name: str = "",
    text: str,
    external_id: str,
    sent_at: datetime,
) -> IncomingOutcome:
    """Appends the message to its conversation's open chat log (opening one), once per external_id,
    and applies the integration's incident rules. See the module docstring for the arguments."""
    if channel not in SOCIAL_CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(SOCIAL_CHANNELS)}, not {channel!r}.")
    if not external_id or not sender_id or not account_id:
        raise ValueError("external_id, sender_id and account_id are needed to record a social message.")
    line_id = _line_id(channel, external_id)
    if _seen(integration, line_id):
        return IncomingOutcome(recorded=False)
    text = text.replace("\x00", "")  # PostgreSQL text takes no NUL, and a retry would hit it forever
    session_id = conversation_id(channel, str(account_id), str(sender_id))
    with transaction.atomic():
        # one writer per integration at a time: two messages of a new conversation open one log
        Integration.objects.select_for_update().filter(pk=integration.pk).values_list("pk", flat=True).first()
        if ChatMessage.objects.filter(external_id=line_id).exists():
            return IncomingOutcome(recorded=False)
        try:
            with transaction.atomic():
                chat = _open_chat(integration, channel, session_id, str(sender_id))
                recording_services.append_chat_message(
                    chat.pk,
                    sender=(sender_name.strip() or "customer")[:200],
                    text=text,
                    sent_at=sent_at,
                    external_id=line_id,
                )
        except IntegrityError:  # the same message, recorded through another integration of the account
            return IncomingOutcome(recorded=False)
        result = _apply_incident_rules(
            integration,
            channel=channel,
            account_id=str(account_id),
            sender_id=str(sender_id),
            sender_name=sender_name,
            text=text,
            external_id=external_id,
            recording_id=chat.pk,
        )
        transaction.on_commit(lambda: _remember(integration, line_id))
    incident = result.incident if result else None
    return IncomingOutcome(
        recorded=True,
        recording_id=chat.pk,
        incident_id=incident.pk if incident else None,
        incident_created=bool(result and result.created),
    )


def _open_chat(integration: Integration, channel: str, session_id: str, sender_id: str) -> Recording:
    """The conversation's open chat log, locked (an idle close waits for this line), or a new one."""
    agent_id = f"{AGENT_PREFIX}{integration.integration_id}"
    chat = (
        Recording.objects.select_for_update()
        .filter(kind=Kind.CHAT, status=Status.RECORDING, session_id=session_id, agent_id=agent_id)
        .order_by("pk")
        .first()
    )
    if chat is not None:
        return chat
    return recording_services.open_chat(
        session_id=session_id, agent_id=agent_id, customer_id=sender_id[:200], channel=channel
    )


# --- incident rules ----------------------------------------------------------------------------------


def incident_rules(integration: Integration) -> list[dict]:
    options = integration.options if isinstance(integration.options, dict) else {}
    rules = options.get("incident_rules")
    return rules if isinstance(rules, list) else []


def matching_rule(rules: list[dict], *, text: str, sender_id: str, sender_name: str = "") -> tuple[int, dict] | None:
    """(index, rule) of the first rule the message meets, or None."""
    folded = text.casefold()
    for index, rule in enumerate(rules):
        senders = rule.get("senders") or []
        if senders and not _is_listed(sender_id, sender_name, senders):
            continue
        keywords = rule.get("keywords") or []
        if keywords and not any(str(keyword).casefold() in folded for keyword in keywords):
            continue
        return index, rule
    return None


def _is_listed(sender_id: str, sender_name: str, senders: list[str]) -> bool:
    handle = sender_name.strip().lstrip("@").casefold()
    for listed in senders:
        listed = str(listed).strip()
        if listed == sender_id or (handle and listed.lstrip("@").casefold() == handle):
            return True
    return False


def _apply_incident_rules(
    integration: Integration,
    *,
    channel: str,
    account_id: str,
    sender_id: str,
    sender_name: str,
    text: str,
    external_id: str,
    recording_id: int,
) -> incident_services.IngestResult | None:
    """Opens (or joins) the conversation's incident when a rule matches. A refusal (no escalation
    policy exists at all) is logged, not raised: the chat line is kept, and the provider's retry
    could not fix it."""
    found = matching_rule(incident_rules(integration), text=text, sender_id=sender_id, sender_name=sender_name)
    if found is None:
        return None
    index, rule = found
    actor = f"{AGENT_PREFIX}{integration.integration_id}"
    who = f"{sender_name.strip()} ({sender_id})" if sender_name.strip() else sender_id
    cut = text if len(text) <= SUMMARY_TEXT_CHARS else text[: SUMMARY_TEXT_CHARS - 1] + "…"
    language = _language(integration)
    summary = SUMMARIES[language].format(channel=CHANNEL_NAMES[channel], sender=who, text=" ".join(cut.split()))
    payload: dict[str, Any] = {
        "channel": channel,
        "account_id": account_id,
        "sender_id": sender_id,
        "sender_name": sender_name,
        "message_id": external_id,
        "text": cut,
        "recording_id": recording_id,
        "integration": integration.integration_id,
        "rule": index,
    }
    try:
        with transaction.atomic():
            choice = incident_services.choose_policy(rule.get("policy"))
            result = incident_services.open_incident(
                summary=summary,
                source=Source.SOCIAL,
                severity=rule.get("severity") or DEFAULT_SEVERITY,
                dedup_key=_incident_key(channel, account_id, sender_id),
                policy=choice.policy,
                payload=payload,
                actor=actor,
            )
            incident_services.record_intake_warnings(result, choice.warnings, actor=actor)
    except DomainError as exc:
        logger.error(
            "a social incident rule matched but no incident could be opened",
            extra={"integration": integration.integration_id, "rule": index, "error": exc.message},
        )
        return None
    return result


def _incident_key(channel: str, account_id: str, sender_id: str) -> str:
    key = f"social:{channel}:{account_id}:{sender_id}"
    return key if len(key) <= DEDUP_KEY_MAX else f"social:{channel}:sha256:{_digest(key)}"


def _language(integration: Integration) -> str:
    language = (integration.options or {}).get("language") if isinstance(integration.options, dict) else None
    return language if language in SUMMARIES else "ko"


def incident_rule_problems(options: Any) -> str | None:
    """Why options["incident_rules"] cannot be used (naming the rule and field), or None."""
    if not isinstance(options, dict) or options.get("incident_rules") in (None, []):
        return None
    rules = options["incident_rules"]
    example = '[{"keywords": ["환불", "refund"], "senders": ["1234567890"], "policy": "payments"}]'
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        return f"options.incident_rules must be a list of at most {MAX_RULES} rules, e.g. {example}."
    problems = []
    for index, rule in enumerate(rules):
        where = f"options.incident_rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(f"{where} must be an object, e.g. {example[1:-1]}.")
            continue
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            problems.append(f"{where} has unknown keys {', '.join(unknown)} (known: {', '.join(sorted(RULE_KEYS))}).")
        for name in ("keywords", "senders"):
            problem = _list_problem(rule.get(name))
            if problem:
                problems.append(f"{where}.{name} {problem}")
        if not rule.get("keywords") and not rule.get("senders"):
            problems.append(f"{where} needs keywords or senders (or both): a rule with neither matches every message.")
        policy = rule.get("policy")
        if policy not in (None, "") and (
            not isinstance(policy, str | int) or incident_selectors.policy_by_reference(policy) is None
        ):
            problems.append(f"{where}.policy: no escalation policy {policy!r} (give a policy's name or id).")
        if rule.get("severity") not in (None, "", *Severity.values):
            problems.append(f"{where}.severity must be one of: {', '.join(Severity.values)}.")
    return " ".join(problems) or None


def _list_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_RULE_ITEMS:
        return f"must be a list of at most {MAX_RULE_ITEMS} strings."
    if not all(isinstance(item, str) and item.strip() and len(item) <= MAX_ITEM_CHARS for item in value):
        return (
            f"must hold non-empty strings of at most {MAX_ITEM_CHARS} characters "
            '(write ids as strings: "1234567890", not 1234567890).'
        )
    return None


# --- idle conversations -----------------------------------------------------------------------------


def close_idle_conversations(idle_seconds: float | None = None, *, limit: int = 500) -> int:
    """Closes the social chat logs nobody wrote in for `idle_seconds` (SOCIAL_CHAT_IDLE_SECONDS, 30 min
    by default); recordings then stores each encrypted. Returns how many were closed. A log a message
    is being added to right now is skipped (its row is locked) and checked again on the next run."""
    if idle_seconds is None:
        idle_seconds = float(getattr(settings, "SOCIAL_CHAT_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))
    cutoff = timezone.now() - timedelta(seconds=idle_seconds)
    open_logs = Recording.objects.filter(
        kind=Kind.CHAT, status=Status.RECORDING, channel__in=SOCIAL_CHANNELS, agent_id__startswith=AGENT_PREFIX
    )
    candidates = list(
        open_logs.annotate(last_line=Max("messages__received_at"))
        .filter(Q(last_line__lt=cutoff) | Q(last_line__isnull=True, started_at__lt=cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    closed = 0
    for pk in candidates:
        with transaction.atomic():
            chat = open_logs.select_for_update(skip_locked=True).filter(pk=pk).first()
            if chat is None:
                continue
            last_line = chat.messages.aggregate(last=Max("received_at"))["last"] or chat.started_at
            if last_line >= cutoff:  # a line came in since the candidates were read
                continue
            recording_services.close_chat(chat.pk)
            closed += 1
    if closed:
        logger.info("idle social conversations closed", extra={"count": closed, "idle_seconds": idle_seconds})
    return closed


# --- the redelivery memory ---------------------------------------------------------------------------


def _line_id(channel: str, external_id: str) -> str:
    line_id = f"{channel}:{external_id}"
    return line_id if len(line_id) <= EXTERNAL_ID_MAX else f"{channel}:sha256:{_digest(external_id)}"


def _seen_key(integration: Integration, line_id: str) -> str:
    return f"{SEEN_KEY_PREFIX}:{integration.pk}:{_digest(line_id)}"


def _seen(integration: Integration, line_id: str) -> bool:
    """True when the line was recorded before, even in a log stored since. Without Redis, only the
    open log's lines are known: a duplicate then costs a line, never a lost one."""
    try:
        return bool(redis_client().exists(_seen_key(integration, line_id)))
    except redis.RedisError as exc:
        logger.warning("social redelivery memory unavailable", extra={"error": str(exc)})
        return False


def _remember(integration: Integration, line_id: str) -> None:
    seconds = int(getattr(settings, "SOCIAL_DEDUP_SECONDS", DEFAULT_DEDUP_SECONDS))
    try:
        redis_client().set(_seen_key(integration, line_id), "1", ex=max(1, seconds))
    except redis.RedisError as exc:
        logger.warning("social redelivery memory unavailable", extra={"error": str(exc)})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
