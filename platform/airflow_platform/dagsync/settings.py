"""dagsync's configuration, validated once so bad input fails with a message naming the
flag/variable and the fix."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# S3's bucket naming rules (general purpose buckets), enough to catch typos like a URL.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# arn:<partition>:sns:<region>:<account>:<topic name>
TOPIC_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):sns:([a-z0-9-]+):([0-9]{12}):([A-Za-z0-9_-]{1,256})$")
# SQS queue names are at most 80 characters; the prefix leaves room for a 16-character token.
_QUEUE_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")

DEFAULT_PARALLELISM = 16
DEFAULT_PLUGINS_MAX_ENTRIES = 10_000
DEFAULT_PLUGINS_MAX_BYTES = 512 * 1024 * 1024
# What one environment's DAGs folder may hold. MWAA's largest class runs 4,000 DAGs; with
# helper modules, SQL and small data files that is a few thousand files and well under a
# gigabyte. The caps keep a bucket writer from filling the node's disk.
DEFAULT_MAX_OBJECT_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_MAX_FILES = 20_000
# requirements.txt and startup.sh are text a person writes: a megabyte is far beyond any.
DEFAULT_MAX_SCRIPT_BYTES = 1024 * 1024
DEFAULT_EVENT_QUEUE_PREFIX = "dagsync-"
DEFAULT_EVENT_HEARTBEAT = 60.0
DEFAULT_EVENT_ORPHAN_AFTER = 900.0
# Airflow's default DAG bundle: the dags_folder the sync root publishes.
DEFAULT_DAG_BUNDLE = "dags-folder"


# Numeric settings: flag/variable named in errors, inclusive bounds, unit.
_RANGES: dict[str, tuple[str, float, float, str]] = {
    "interval": ("--interval/DAGSYNC_INTERVAL", 1, 86_400, " seconds"),
    "event_heartbeat": ("--event-heartbeat/DAGSYNC_EVENT_HEARTBEAT", 1, 3600, " seconds"),
    "parallelism": ("--parallelism/DAGSYNC_PARALLELISM", 1, 128, ""),
    "health_port": ("--health-port/DAGSYNC_HEALTH_PORT", 0, 65_535, " (0 turns it off)"),
    "max_object_bytes": ("--max-object-bytes/DAGSYNC_MAX_OBJECT_BYTES", 1, 2**40, " bytes"),
    "max_total_bytes": ("--max-total-bytes/DAGSYNC_MAX_TOTAL_BYTES", 1, 2**42, " bytes"),
    "max_files": ("--max-files/DAGSYNC_MAX_FILES", 1, 10_000_000, " files"),
    "max_script_bytes": ("--max-script-bytes/DAGSYNC_MAX_SCRIPT_BYTES", 1, 2**30, " bytes"),
}


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the flag and the fix."""


class DagsyncSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    dags_prefix: str = "dags/"
    root: Path = Path("/opt/airflow/sync")
    interval: float = 30.0
    event_queue_url: str = ""
    event_topic_arn: str = ""
    event_queue_prefix: str = DEFAULT_EVENT_QUEUE_PREFIX
    event_heartbeat: float = DEFAULT_EVENT_HEARTBEAT
    event_orphan_after: float = DEFAULT_EVENT_ORPHAN_AFTER
    pod_name: str = ""
    pod_uid: str = ""
    plugins_key: str = ""
    plugins_version: str = ""
    requirements_key: str = ""
    requirements_version: str = ""
    startup_key: str = ""
    startup_version: str = ""
    strict: bool = False
    once: bool = False
    # Loopback unless told otherwise: the chart passes the pod IP for the kubelet's probes.
    health_host: str = "127.0.0.1"
    health_port: int = 8099
    parallelism: int = DEFAULT_PARALLELISM
    plugins_max_entries: int = DEFAULT_PLUGINS_MAX_ENTRIES
    plugins_max_bytes: int = DEFAULT_PLUGINS_MAX_BYTES
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_files: int = DEFAULT_MAX_FILES
    max_script_bytes: int = DEFAULT_MAX_SCRIPT_BYTES
    # Airflow's metadata database: when set, each published version's changes are written as
    # parse requests for the DAG processor (parse_requests.py). Never shown in a repr.
    database_url: str = Field(default="", repr=False)
    dag_bundle: str = DEFAULT_DAG_BUNDLE

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("s3://") or "/" in value:
            raise ValueError(
                f"--bucket/DAGSYNC_BUCKET must be a bare bucket name, got {value!r}; "
                "put the folder in --dags-prefix (e.g. --bucket my-bucket --dags-prefix dags/)"
            )
        if not _BUCKET_RE.match(value):
            raise ValueError(
                f"--bucket/DAGSYNC_BUCKET {value!r} is not a valid S3 bucket name "
                "(3-63 characters: lowercase letters, digits, '.' and '-')"
            )
        return value

    @field_validator("dags_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        # "dags" would also match "dags2/..."; a prefix always names a folder.
        value = value.lstrip("/")
        if value and not value.endswith("/"):
            value += "/"
        return value

    @field_validator(*_RANGES)
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        flag, low, high, unit = _RANGES[str(info.field_name)]
        if not low <= value <= high:
            raise ValueError(f"{flag} must be between {low} and {high}{unit}, got {value}")
        return value

    @field_validator("dag_bundle")
    @classmethod
    def _bundle(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 250:
            raise ValueError(
                "--dag-bundle/DAGSYNC_DAG_BUNDLE must name the DAG bundle the DAGs folder is "
                f"(Airflow's default: {DEFAULT_DAG_BUNDLE}), got {value!r}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        value = value.strip()
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if value and not scheme.startswith(("postgresql", "mysql", "sqlite")):
            raise ValueError(
                "--database-url/DAGSYNC_DATABASE_URL must be Airflow's sql_alchemy_conn "
                "(postgresql://..., mysql://... or sqlite:///...), got a value with scheme "
                f"{scheme or 'none'!r}"
            )
        return value

    @field_validator("event_topic_arn")
    @classmethod
    def _topic(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        flag = "--event-topic-arn/DAGSYNC_EVENT_TOPIC_ARN"
        if value.endswith(".fifo"):
            raise ValueError(
                f"{flag} names a FIFO topic ({value!r}); S3 publishes its event notifications "
                "only to standard topics: create a standard SNS topic"
            )
        if not TOPIC_ARN_RE.match(value):
            hint = " (a queue URL goes in --event-queue-url)" if "sqs" in value else ""
            raise ValueError(
                f"{flag} must be an SNS topic ARN such as "
                f"arn:aws:sns:eu-west-1:123456789012:dag-events, got {value!r}{hint}"
            )
        return value

    @field_validator("event_queue_prefix")
    @classmethod
    def _queue_prefix(cls, value: str) -> str:
        if not _QUEUE_PREFIX_RE.match(value):
            raise ValueError(
                "--event-queue-prefix/DAGSYNC_EVENT_QUEUE_PREFIX must be 1-60 letters, digits, "
                f"'-' or '_' (an SQS queue name prefix), got {value!r}"
            )
        return value

    @field_validator("plugins_max_entries", "plugins_max_bytes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                "--plugins-max-entries/--plugins-max-bytes must be positive, got " + str(value)
            )
        return value

    @field_validator("plugins_key", "requirements_key", "startup_key")
    @classmethod
    def _key(cls, value: str) -> str:
        value = value.lstrip("/")
        if value.endswith("/"):
            raise ValueError(f"an object key must name a file, not a folder: {value!r}")
        return value

    @model_validator(mode="after")
    def _versions_need_keys(self) -> DagsyncSettings:
        for name in ("plugins", "requirements", "startup"):
            if getattr(self, f"{name}_version") and not getattr(self, f"{name}_key"):
                flag = name.upper()
                raise ValueError(
                    f"--{name}-version/DAGSYNC_{flag}_VERSION is set but "
                    f"--{name}-key/DAGSYNC_{flag}_KEY is empty; set the key too"
                )
        return self

    @model_validator(mode="after")
    def _object_within_total(self) -> DagsyncSettings:
        if self.max_object_bytes > self.max_total_bytes:
            raise ValueError(
                f"--max-object-bytes/DAGSYNC_MAX_OBJECT_BYTES ({self.max_object_bytes}) is larger "
                f"than --max-total-bytes/DAGSYNC_MAX_TOTAL_BYTES ({self.max_total_bytes}); "
                "lower the first or raise the second"
            )
        return self

    @model_validator(mode="after")
    def _event_source(self) -> DagsyncSettings:
        if self.event_queue_url and self.event_topic_arn:
            raise ValueError(
                "--event-queue-url/DAGSYNC_EVENT_QUEUE_URL and --event-topic-arn/"
                "DAGSYNC_EVENT_TOPIC_ARN are alternatives: set the topic (every pod hears every "
                "event) or the queue (each event wakes one consumer), not both"
            )
        if self.event_orphan_after < 3 * self.event_heartbeat:
            raise ValueError(
                f"--event-orphan-after/DAGSYNC_EVENT_ORPHAN_AFTER ({self.event_orphan_after:g}) "
                "must be at least 3 heartbeats (--event-heartbeat/DAGSYNC_EVENT_HEARTBEAT = "
                f"{self.event_heartbeat:g}), or a live sidecar's queue could be taken for an orphan"
            )
        return self

    @property
    def artifact_keys(self) -> frozenset[str]:
        """Keys that are never mirrored as DAGs, even when they sit under the DAGs prefix
        (an empty prefix mirrors the whole bucket)."""
        return frozenset(
            k for k in (self.plugins_key, self.requirements_key, self.startup_key) if k
        )


def build_settings(**values: object) -> DagsyncSettings:
    """Validate, turning pydantic's report into one readable SettingsError."""
    from pydantic import ValidationError

    try:
        return DagsyncSettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}: {message}")
        raise SettingsError("; ".join(problems)) from None
