"""The whole data model on one page: tenants, keys, templates, files, campaigns, messages."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from postroom.db.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Every message status (campaigns.states spells them for the API; the schema needs the names).
#: What happened after hand-over, counted once per message (unique recipients).
ENGAGEMENT_COUNTS = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
#: Every type of event the event store keeps (the API's filter, webhook subscriptions).
EVENT_TYPES = (
    "sent",
    "delivered",
    "deferred",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "unsubscribed",
    "rejected",
    "failed",
)

MESSAGE_STATUSES = (
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "suppressed",
    "cancelled",
)

# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
MessageId = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Overrides of the POSTROOM_TENANT_RATE_LIMIT default (messages/second) and extra
    # per-recipient-domain limits ({domain: messages/second}) for this tenant's mail.
    Column("rate_limit", Float),
    Column("domain_rate_limits", JSON),
    # Tracking defaults for new campaigns; NULL means on.
    Column("track_opens", Boolean),
    Column("track_clicks", Boolean),
    # The tenant's own request rate per API key (requests/second, 0: none) and burst, and its
    # quotas (0: none); NULL is the platform's default (POSTROOM_API_RATE_*, POSTROOM_QUOTA_*).
    Column("api_rate_limit", Float),
    Column("api_rate_burst", Integer),
    Column("quota_file_bytes", BigInteger),
    Column("quota_rows_per_campaign", BigInteger),
    Column("quota_messages_per_day", BigInteger),
)

# Messages each tenant's campaigns took on per UTC day (their files' rows, counted when the
# campaign is created), the counter the messages-per-day quota is checked against.
tenant_daily_usage = Table(
    "tenant_daily_usage",
    metadata,
    Column("tenant_id", String(40), ForeignKey("tenants.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("messages", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("scopes", JSON),  # the key's scopes (tenants.scopes); NULL: every scope
)

templates = Table(
    "templates",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("subject", Text, nullable=False),
    Column("status", String(20), nullable=False),  # pending_upload | ready | invalid
    Column("blob_key", String(300), nullable=False, unique=True),
    Column("variables", JSON, nullable=False),
    Column("errors", JSON, nullable=False),
    # The templates it extends, includes or imports: {name as written: template id}, pinned
    # when it was uploaded (templates/pinning.py); NULL: none (or not checked yet).
    Column("dependencies", JSON),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("uploaded_at", UtcDateTime),
)

files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("filename", String(300), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("status", String(20), nullable=False),  # pending_upload | uploaded
    Column("blob_key", String(300), nullable=False, unique=True),
    Column("size", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("uploaded_at", UtcDateTime),
    # When a campaign last finished reading it, and when retention deleted its CSV (the row
    # stays, so that the API can say the file is gone).
    Column("processed_at", UtcDateTime),
    Column("source_deleted_at", UtcDateTime),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("template_id", String(40), ForeignKey("templates.id"), nullable=False),
    Column("file_id", String(40), ForeignKey("files.id"), nullable=False),
    Column("from_email", String(320), nullable=False),
    Column("from_name", String(200)),
    Column("reply_to", String(320)),
    Column("email_column", String(200)),
    Column("csv_delimiter", String(1)),
    Column("metadata", JSON, nullable=False),
    # processing | scheduled | sending | paused | completed | failed | cancelled
    Column("status", String(20), nullable=False),
    Column("error_code", String(60)),
    Column("error_message", Text),
    Column("scheduled_at", UtcDateTime),
    # What file processing found, committed batch by batch (rows_done is the resume point).
    Column("columns", JSON),
    Column("file_warnings", JSON, nullable=False),
    Column("rows_done", Integer, nullable=False, default=0),
    Column("valid_rows", Integer, nullable=False, default=0),
    Column("invalid_rows", Integer, nullable=False, default=0),
    Column("duplicate_rows", Integer, nullable=False, default=0),
    # Open and click tracking, resolved from the request or the tenant's default at creation.
    Column("track_opens", Boolean, nullable=False, default=True, server_default="1"),
    Column("track_clicks", Boolean, nullable=False, default=True, server_default="1"),
    # Messages by status, kept with every change so that status reads never count rows.
    *(
        Column(f"{status}_count", Integer, nullable=False, default=0, server_default="0")
        for status in MESSAGE_STATUSES
    ),
    # Messages with each kind of event after hand-over, each counted once.
    *(
        Column(f"{name}_count", Integer, nullable=False, default=0, server_default="0")
        for name in ENGAGEMENT_COUNTS
    ),
    # Messages that may have reached the relay twice (a worker died or the connection was
    # lost mid-transaction), counted once each.
    Column("possible_duplicate_count", Integer, nullable=False, default=0, server_default="0"),
    # Set while paused; during processing it makes the campaign paused once its file is in.
    Column("paused_at", UtcDateTime),
    # Created with hold: once its file is in, the campaign waits (held) for a confirmation.
    Column("hold", Boolean, nullable=False, default=False, server_default=text("false")),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    # When retention purged the personalisation of every message (none is left to purge).
    Column("personalisation_purged_at", UtcDateTime),
    Index("ix_campaigns_tenant_created", "tenant_id", "created_at", "id"),
    Index("ix_campaigns_status", "status"),
    Index("ix_campaigns_file", "file_id"),  # retention: files no campaign used (0017)
)

messages = Table(
    "messages",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("campaign_id", String(40), ForeignKey("campaigns.id"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("fields", Text, nullable=False),  # the row as compact JSON
    # queued | sending | sent | deferred | failed | suppressed | cancelled
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # When it may be claimed: its creation, or the next attempt of a deferred message.
    Column("available_at", UtcDateTime, nullable=False),
    # The start of its retry budget.
    Column("first_attempt_at", UtcDateTime),
    Column(
        "possible_duplicate", Boolean, nullable=False, default=False, server_default=text("false")
    ),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UtcDateTime),
    Column("last_error", Text),
    Column("message_id", String(200)),
    Column("relay_reply", Text),
    # The relay's queue id or the provider's message id (SES MessageId), to match its events.
    Column("provider_message_id", String(200), index=True),
    Column("sent_at", UtcDateTime),
    # The first time of each event after hand-over, and the final outcome they add up to
    # (delivered | bounced | complained).
    Column("delivered_at", UtcDateTime),
    Column("bounced_at", UtcDateTime),
    Column("complained_at", UtcDateTime),
    Column("first_opened_at", UtcDateTime),
    Column("first_clicked_at", UtcDateTime),
    Column("unsubscribed_at", UtcDateTime),
    Column("outcome", String(20)),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("campaign_id", "email_key", name="uq_messages_campaign_email"),
    Index("ix_messages_campaign_status", "campaign_id", "status", "id"),
    # The claim's index: only messages waiting to be sent, in the order claims take them, so
    # claiming stays cheap when the table holds a hundred million sent ones.
    Index(
        "ix_messages_due",
        "campaign_id",
        "status",
        "available_at",
        "id",
        sqlite_where=text("status IN ('queued', 'deferred')"),
        postgresql_where=text("status IN ('queued', 'deferred')"),
    ),
    Index("ix_messages_campaign_id", "campaign_id", "id"),
    Index(
        "ix_messages_leases",
        "lease_expires_at",
        sqlite_where=text("status = 'sending'"),
        postgresql_where=text("status = 'sending'"),
    ),
)

# Every status change of a message after it was written from the file, with its time.
message_transitions = Table(
    "message_transitions",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("message_pk", MessageId, nullable=False),
    Column("campaign_id", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("from_status", String(20), nullable=False),
    Column("to_status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False),  # the message's attempts after the change
    Column("detail", Text),  # the relay's reply or the reason
    Index("ix_message_transitions_message_pk", "message_pk", "id"),
)

# The event store: append-only; ``event_key`` makes a provider's repeated delivery of one
# event land once.
events = Table(
    "events",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("campaign_id", String(40), nullable=False),
    Column("message_pk", MessageId, nullable=False),
    Column("type", String(20), nullable=False),
    Column("source", String(20), nullable=False),  # ses | smtp | tracking
    Column("recipient", String(320)),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("event_key", String(100), nullable=False, unique=True),
    Column("data", JSON, nullable=False),
    Index("ix_events_campaign", "campaign_id", "id"),
    Index("ix_events_campaign_type", "campaign_id", "type", "id"),
    Index("ix_events_message", "message_pk", "id"),
)

# Addresses a tenant must not mail again: hard bounces, complaints, unsubscribes (added
# automatically) and addresses added by hand. ``email_key`` is the message table's key, or
# for an erased address ``erased:<HMAC>`` with no ``email`` (suppressions/erased.py).
suppressions = Table(
    "suppressions",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("email_key", String(320), primary_key=True),
    Column("email", String(320)),
    # hard_bounce | complaint | unsubscribe | manual | erased
    Column("reason", String(40), nullable=False),
    Column("detail", Text),
    Column("created_at", UtcDateTime, nullable=False),
)

# One circuit breaker per transport, shared by every worker process: closed | open | half_open.
breakers = Table(
    "breakers",
    metadata,
    Column("transport", String(300), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("failures", Integer, nullable=False),  # transport-level failures in a row
    Column("opened_count", Integer, nullable=False),  # opens in a row, for the cool-down
    Column("last_error", Text),
    Column("retry_at", UtcDateTime),  # when an open breaker lets one probe through
    Column("probe_owner", String(80)),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Rate-limit buckets every worker and API process shares: a theoretical arrival time (epoch
# seconds) per key (``transport:…``, ``tenant:…``, ``domain:…``, ``api:<key id>``); see
# ratelimits/gcra.py. UNLOGGED on PostgreSQL (migration 0013): losing them in a crash
# costs one burst, and every API request writes one.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("tat", Double, nullable=False),
)

row_issues = Table(
    "row_issues",
    metadata,
    Column("campaign_id", String(40), ForeignKey("campaigns.id"), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(20), nullable=False),  # running | done
    Column("response_status", Integer),
    Column("response_body", JSON),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# Mail received at the bounce address and what became of it:
# recorded | duplicate | unmatched | unparseable | ignored (auto-replies). Mail that was not
# recorded is kept in the blob store under ``blob_key``.
inbound_mail = Table(
    "inbound_mail",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("envelope_from", String(320), nullable=False),
    Column("envelope_to", String(1000), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text),
    Column("blob_key", String(300)),
    Index("ix_inbound_mail_outcome", "outcome", "id"),
)

# Analytics rollups (postroom.analytics), kept with the events in the same transaction.
analytics_minutes = Table(
    "analytics_minutes",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("bucket", UtcDateTime, primary_key=True),  # the minute the events occurred in
    Column("type", String(20), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("uniques", BigInteger, nullable=False),  # first of its kind for its message
    Index("ix_analytics_minutes_tenant", "tenant_id", "bucket"),
)
analytics_links = Table(
    "analytics_links",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("url", String(2000), primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("unique_clicks", BigInteger, nullable=False),
)
analytics_bounces = Table(
    "analytics_bounces",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("bounce_type", String(40), primary_key=True),  # "" when the report had none
    Column("status", String(40), primary_key=True),
    Column("subtype", String(80), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
analytics_domains = Table(
    "analytics_domains",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("domain", String(255), primary_key=True),
    *(
        Column(name, BigInteger, nullable=False, default=0, server_default="0")
        for name in (
            "sent",
            "delivered",
            "bounced",
            "complained",
            "opened",
            "clicked",
            "unsubscribed",
        )
    ),
)

# Webhooks (postroom.webhooks): the tenant's endpoints, the event types each subscribes to,
# and one delivery row per event and endpoint, retried until a 2xx or the retry window ends.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("description", String(500)),
    Column("secret", String(100), nullable=False),  # signs deliveries, so kept as is
    Column("status", String(20), nullable=False),  # active | disabled
    Column("disabled_reason", Text),
    Column("failing_since", UtcDateTime),  # the first failure after the last success
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), primary_key=True),
    Column("event_type", String(40), primary_key=True),  # an event type, or "*"
    Column("tenant_id", String(40), nullable=False),
    Index("ix_webhook_subscriptions_tenant", "tenant_id", "event_type"),
)
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    # The event's id as the receiver sees it (the same for every endpoint and attempt).
    Column("event_uid", String(60), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("event_id", MessageId),  # the stored event (message events)
    Column("payload", JSON),  # the event's data when it is not in the event store (campaigns)
    Column("status", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UtcDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    UniqueConstraint("endpoint_id", "event_uid", name="uq_webhook_deliveries_endpoint_event"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    # Retention deletes finished deliveries oldest first (migration 0017).
    Index(
        "ix_webhook_deliveries_finished",
        "finished_at",
        sqlite_where=text("status <> 'pending'"),
        postgresql_where=text("status <> 'pending'"),
    ),
)

# The audit log: one row per state-changing call (API, console form, CLI admin command);
# append-only, nothing in Postroom changes or removes a row.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", MessageId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(20), nullable=False),  # api | console | admin
    Column("key_id", String(40)),  # the API key (or the console session's key); none for admin
    Column(
        "action", String(200), nullable=False
    ),  # e.g. "POST /api/v1/campaigns/{campaign_id}/cancel"
    Column("target", JSON, nullable=False),  # the resource ids the call named or created
    Column("status", Integer),  # the HTTP status answered
    Column("client_address", String(100)),
    Column("request_id", String(80)),
    Index("ix_audit_log_tenant", "tenant_id", "id"),
)
