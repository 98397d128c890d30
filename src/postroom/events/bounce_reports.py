"""Reading inbound mail at the bounce address: an RFC 3464 delivery status notification, an
RFC 5965 ARF complaint report, a non-standard bounce text (Gmail, Exchange, qmail style) or an
auto-reply, with whatever names the original message (VERP addresses, Message-IDs). Pure: the
raw bytes in, a :class:`InboundReport` out; nothing here raises on bad input."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Literal, cast

Kind = Literal["bounce", "complaint", "auto_reply", "unparseable"]
BounceType = Literal["hard", "soft"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|returned mail|delivery failure|"
    r"mail delivery failed|failure notice|delivery has failed|non.?delivery",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response)|out of (the )?office|abwesenheit|absence)",
    re.IGNORECASE,
)
#: Phrases of bounce texts, most specific first: (pattern, bounce type, subtype).
_PHRASES: tuple[tuple[re.Pattern[str], BounceType, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cast("BounceType", bounce_type), subtype)
    for pattern, bounce_type, subtype in (
        (
            r"mailbox (is )?full|quota exceeded|over ?quota|insufficient storage",
            "soft",
            "mailbox_full",
        ),
        (
            r"user unknown|unknown user|no such (user|mailbox)|does not exist|"
            r"invalid recipient|recipient address rejected|mailbox not found",
            "hard",
            "no_such_user",
        ),
        (
            r"domain name not found|host or domain name not found|no mx|bad destination",
            "hard",
            "bad_domain",
        ),
        (
            r"mailbox (is )?(unavailable|disabled|inactive)|account (is )?disabled",
            "hard",
            "mailbox_unavailable",
        ),
        (r"failed permanently|permanent (error|failure)", "hard", "general"),
        (r"temporar(y|ily)|try again later|deferred|delayed|will be retried", "soft", "deferred"),
    )
)


@dataclass(frozen=True, slots=True)
class RecipientBounce:
    """What a report says of one recipient."""

    recipient: str | None
    bounce_type: BounceType
    subtype: str  # no_such_user, mailbox_full, bad_domain, policy, deferred, …
    status: str | None = None  # the enhanced status code, e.g. 5.1.1
    action: str | None = None  # failed | delayed (DSN only)
    diagnostic_code: str | None = None


@dataclass(frozen=True, slots=True)
class InboundReport:
    kind: Kind
    detail: str = ""
    bounces: tuple[RecipientBounce, ...] = ()
    feedback_type: str | None = None  # ARF: abuse, fraud, virus, other…
    user_agent: str | None = None
    complained_recipients: tuple[str, ...] = ()
    #: Addresses that may hold a VERP token: where the report was sent, the original envelope
    #: sender it names, the returned message's Return-Path.
    verp_candidates: tuple[str, ...] = ()
    #: Message-IDs of the original message (without angle brackets).
    message_ids: tuple[str, ...] = field(default=())


def read_report(raw: bytes) -> InboundReport:
    """Classify one inbound mail."""
    if not raw.strip():
        return InboundReport("unparseable", "empty message")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        report = _classify(msg)
    except Exception as exc:  # the email package has many odd corners; never fail the caller
        return InboundReport("unparseable", f"cannot read message: {type(exc).__name__}")
    return replace(report, verp_candidates=tuple(dict.fromkeys(report.verp_candidates)))


def _classify(msg: Message) -> InboundReport:
    if not msg.keys() or (msg.defects and not msg.get("From") and not msg.get("Content-Type")):
        return InboundReport("unparseable", "no headers")
    candidates = _addresses(msg, ("To", "Delivered-To", "X-Original-To"))
    content_type = msg.get_content_type()
    report_type = (msg.get_param("report-type") or "").__str__().lower()
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _delivery_status(msg, candidates)
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _feedback_report(msg, candidates)
    if _looks_like_bounce(msg):
        return _bounce_text(msg, candidates)
    if _looks_like_auto_reply(msg):
        return InboundReport("auto_reply", "automatic reply", verp_candidates=candidates)
    return InboundReport("unparseable", "neither a delivery report nor a complaint")


def _delivery_status(msg: Message, candidates: tuple[str, ...]) -> InboundReport:
    groups: list[Message] = []
    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            groups += _field_groups(part)
        elif ctype in ("text/rfc822-headers", "message/rfc822") and original is None:
            original = _original_headers(part)
    bounces: list[RecipientBounce] = []
    extra: list[str] = []
    for group in groups:
        for name in ("X-Postfix-Sender", "X-Internet-Inbound-Sender", "Original-Envelope-Id"):
            if group.get(name):
                extra.append(_typed_value(group[name]))
        if group.get("Final-Recipient") is None and group.get("Action") is None:
            continue  # the per-message fields
        bounce = _dsn_recipient(group)
        if bounce is not None:
            bounces.append(bounce)
    candidates += tuple(extra) + _addresses(original, ("Return-Path",))
    ids = _message_ids(original)
    if not bounces:
        return InboundReport(
            "unparseable",
            "delivery report names no failed or delayed recipient",
            verp_candidates=candidates,
            message_ids=ids,
        )
    return InboundReport(
        "bounce", "delivery status notification", tuple(bounces), None, None, (), candidates, ids
    )


def _dsn_recipient(group: Message) -> RecipientBounce | None:
    action = (group.get("Action") or "").strip().lower() or None
    if action in ("delivered", "relayed", "expanded"):
        return None
    recipient = _typed_value(group.get("Final-Recipient") or group.get("Original-Recipient") or "")
    status = _first_status(group.get("Status") or "")
    diagnostic = _unfold(group.get("Diagnostic-Code") or "") or None
    if status is None and diagnostic:
        status = _first_status(diagnostic)
    if action == "delayed":
        bounce_type: BounceType = "soft"
    elif status is not None:
        bounce_type = "hard" if status.startswith("5") else "soft"
    else:
        bounce_type = "hard"  # failed, with no status to say otherwise
    subtype = "deferred" if action == "delayed" else _subtype(status, diagnostic or "")
    return RecipientBounce(recipient or None, bounce_type, subtype, status, action, diagnostic)


def _feedback_report(msg: Message, candidates: tuple[str, ...]) -> InboundReport:
    fields: Message | None = None
    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and fields is None:
            groups = _field_groups(part)
            fields = groups[0] if groups else None
        elif ctype in ("text/rfc822-headers", "message/rfc822") and original is None:
            original = _original_headers(part)
    if fields is None or not fields.get("Feedback-Type"):
        return InboundReport("unparseable", "feedback report without Feedback-Type")
    rcpts = [
        addr
        for name in ("Original-Rcpt-To", "Removal-Recipient")
        for addr in _addresses(fields, (name,))
    ]
    candidates += _addresses(fields, ("Original-Mail-From",))
    candidates += _addresses(original, ("Return-Path",))
    return InboundReport(
        "complaint",
        "feedback report",
        feedback_type=fields["Feedback-Type"].strip().lower(),
        user_agent=(fields.get("User-Agent") or "").strip() or None,
        complained_recipients=tuple(rcpts),
        verp_candidates=candidates,
        message_ids=_message_ids(original),
    )


def _looks_like_bounce(msg: Message) -> bool:
    sender = parseaddr(msg.get("From") or "")[1]
    return bool(
        msg.get("X-Failed-Recipients")
        or _BOUNCE_SENDER.match(sender)
        or _BOUNCE_SUBJECT.search(msg.get("Subject") or "")
    )


def _looks_like_auto_reply(msg: Message) -> bool:
    auto = (msg.get("Auto-Submitted") or "no").strip().lower()
    return bool(
        auto != "no"
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or (msg.get("Precedence") or "").strip().lower() == "auto_reply"
        or _AUTO_REPLY_SUBJECT.search(msg.get("Subject") or "")
    )


def _bounce_text(msg: Message, candidates: tuple[str, ...]) -> InboundReport:
    text = _text_of(msg)
    notice, _, returned = _split_returned(text)
    failed: list[str | None] = [
        a.strip() for a in (msg.get("X-Failed-Recipients") or "").split(",") if a.strip()
    ]
    if not failed:
        sender = parseaddr(msg.get("From") or "")[1].lower()
        failed = [a for a in dict.fromkeys(_ADDRESS.findall(notice)) if a.lower() != sender][:1]
    status = _first_status(notice)
    bounce_type: BounceType | None = None
    subtype = "general"
    for pattern, phrase_type, phrase_subtype in _PHRASES:
        if pattern.search(notice):
            bounce_type, subtype = phrase_type, phrase_subtype
            break
    if status is not None:
        bounce_type = "hard" if status.startswith("5") else "soft"
        subtype = _subtype(status, notice) if subtype == "general" else subtype
    elif bounce_type is None and (code := _SMTP_CODE.search(notice)):
        bounce_type = "hard" if code.group(1) == "5" else "soft"
    if bounce_type is None:
        return InboundReport("unparseable", "a bounce text with no reason that can be read")
    diagnostic = _diagnostic_line(notice)
    original = email.message_from_string(returned) if returned else None
    candidates += _addresses(original, ("Return-Path",))
    bounces = tuple(
        RecipientBounce(rcpt, bounce_type, subtype, status, None, diagnostic)
        for rcpt in (failed or [None])
    )
    return InboundReport(
        "bounce", "bounce text", bounces, None, None, (), candidates, _message_ids(original)
    )


def _subtype(status: str | None, text: str) -> str:
    if status is not None:
        _, subject, detail = status.split(".")
        by_status = {
            ("1", "1"): "no_such_user",
            ("1", "2"): "bad_domain",
            ("2", "2"): "mailbox_full",
            ("3", "4"): "message_too_large",
        }.get((subject, detail))
        if by_status:
            return by_status
        by_subject = {
            "1": "bad_address",
            "2": "mailbox_unavailable",
            "4": "network",
            "7": "policy",
        }.get(subject)
        if by_subject:
            return by_subject
    for pattern, _, subtype in _PHRASES:
        if pattern.search(text):
            return subtype
    return "general"


def _field_groups(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", text) if block]


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    if isinstance(payload, str):
        return HeaderParser().parsestr(payload)
    return None


def _addresses(msg: Message | None, names: tuple[str, ...]) -> tuple[str, ...]:
    if msg is None:
        return ()
    values = [str(v) for name in names for v in (msg.get_all(name) or [])]
    return tuple(addr for _, addr in getaddresses(values) if "@" in addr)


def _message_ids(msg: Message | None) -> tuple[str, ...]:
    if msg is None:
        return ()
    return tuple(
        found.strip()
        for value in msg.get_all("Message-ID") or []
        for found in re.findall(r"<([^<>\s]+)>", str(value))
    )


def _typed_value(value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    kind, semi, rest = _unfold(str(value)).partition(";")
    return (rest if semi else kind).strip().strip("<>")


def _unfold(value: str) -> str:
    return " ".join(str(value).split())


def _first_status(text: str) -> str | None:
    found = _STATUS.search(text)
    return found.group(0) if found else None


def _text_of(msg: Message) -> str:
    texts = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    texts.append(payload.decode(charset, errors="replace"))
                except LookupError:
                    texts.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(texts)


def _split_returned(text: str) -> tuple[str, str, str]:
    """The notice and the returned original (after "----- Original message -----" and
    the like), if the text has one."""
    found = re.search(
        r"^-+ *(original message|this is a copy of the message).*$",
        text,
        re.IGNORECASE | re.MULTILINE,
    )
    if found is None:
        return text, "", ""
    return text[: found.start()], found.group(0), text[found.end() :].lstrip("\r\n")


def _diagnostic_line(notice: str) -> str | None:
    for line in notice.splitlines():
        stripped = line.strip()
        if _STATUS.search(stripped) or any(p.search(stripped) for p, _, _ in _PHRASES):
            return stripped[:500]
    return None
