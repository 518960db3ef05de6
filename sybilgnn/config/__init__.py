"""One typed configuration for every stage.

Sources, later wins: built-in defaults, a YAML file (``--config`` or ``sybilgnn.yaml`` in the
working directory), environment variables ``SYBILGNN__SECTION__KEY=value`` and CLI
``--set section.key=value``. Validation happens once at start; errors name the key and value.
The graph schema's sections (what the export reads) are in ``schema.py``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sybilgnn.config._base import _Section
from sybilgnn.config.schema import (ExportSettings, LabelSchema, NodeSchema, RelationshipSchema,
                                    export_schema_problem)
from sybilgnn.errors import SybilgnnError

__all__ = [
    "ConfigError",
    "ExportSettings",
    "LabelSchema",
    "Neo4jSettings",
    "NodeSchema",
    "RelationshipSchema",
    "Settings",
    "export_schema_problem",
    "load_settings",
    "with_postgres_driver",
]

ENV_PREFIX = "SYBILGNN__"
DEFAULT_CONFIG_FILE = "sybilgnn.yaml"


class ConfigError(SybilgnnError, ValueError):
    """A configuration value is missing or invalid; the message names key and value."""


BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


class Neo4jSettings(_Section):
    """Connection to Neo4j, and the local server the package manages when ``managed``."""

    uri: str = "bolt://127.0.0.1:7687"
    user: str = "neo4j"
    password: str | None = Field(default=None, description="overrides password_file; avoid in files")
    password_file: Path = Path(".sybilgnn/neo4j/password")
    database: str = "neo4j"
    managed: bool = True
    home: Path = Path(".sybilgnn/neo4j")
    lib_dir: Path = Path(".sybilgnn/neo4j-lib")
    bolt_port: int = Field(default=7687, ge=1, le=65535)
    http_port: int = Field(default=7474, ge=1, le=65535)
    heap: str = "1g"
    pagecache: str = "512m"
    start_timeout_s: float = Field(default=120.0, gt=0)
    retry_s: float = Field(default=30.0, ge=0, description="how long the driver retries a "
                           "transaction that failed transiently (a server restarting, a "
                           "leader switch) before the command fails")
    connect_timeout_s: float = Field(default=15.0, gt=0, description="how long one attempt "
                                     "to open a connection may take")
    ca_file: Path | None = Field(
        default=None, description="PEM certificate(s) to trust for a server's TLS (a company "
        "CA or the server's self-signed certificate), with a bolt+s:// or neo4j+s:// uri; "
        "unset: the system's trusted CAs")
    procedures: Literal["auto", "off", "required"] = Field(
        default="auto", description="sybilgnn's server-side procedures for export, "
        "transactional (delta) ingest and write-back: auto = use them when the server has them, off = plain Cypher, "
        "required = fail without them")

    @field_validator("uri")
    @classmethod
    def _bolt_uri(cls, value: str) -> str:
        # the driver's HTTP preview and unknown schemes fail deep inside it, with a
        # KeyError or after retries; name the schemes the package speaks instead
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in BOLT_SCHEMES:
            raise ValueError(f"expected a Bolt URI such as bolt://host:7687 (schemes: "
                             f"{', '.join(BOLT_SCHEMES)})")
        return value

    @field_validator("heap", "pagecache")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not value or not value[:-1].isdigit() or value[-1].lower() not in "kmg":
            raise ValueError(f"expected a size like '512m' or '2g', got {value!r}")
        return value


class HashingSettings(_Section):
    """Keyed hash (HMAC-SHA256) that replaces raw IPs and payment tokens before Neo4j."""

    secret: str | None = None
    secret_file: Path = Path(".sybilgnn/hash-secret")


class SimulateSettings(_Section):
    """Defaults of ``sybilgnn simulate`` (scenario names: sybilgnn.simulate.SCENARIOS)."""

    accounts: int = Field(default=20_000, ge=100)
    scenario: str = "medium"
    seed: int = Field(default=7, ge=0)
    out_dir: Path = Path("data/simulated")
    events_scale: float = Field(default=1.0, gt=0, description="multiplies every account's activity")


class IngestSettings(_Section):
    batch_size: int = Field(default=10_000, gt=0)
    quarantine_file: str = "quarantine.csv"
    mode: Literal["auto", "bulk", "transactional"] = Field(
        default="auto",
        description="auto: neo4j-admin bulk import when the managed server's database is "
                    "empty, ingest owns the connection and the delivery has at least "
                    "bulk_min_rows rows; Cypher transactions otherwise")
    bulk_min_rows: int = Field(
        default=300_000, ge=0,
        description="in auto mode, smaller first loads go through Cypher: the bulk path's "
                    "fixed cost (server restart, tool start-up) outweighs its speed")


class SimilaritySettings(_Section):
    """Near-duplicate prompts (MinHash + LSH) aggregated to account pairs."""

    num_perm: int = Field(default=64, ge=16, le=512)
    shingle_size: int = Field(default=3, ge=1, le=10)
    threshold: float = Field(default=0.6, gt=0, le=1)
    max_edges_per_account: int = Field(default=20, ge=1)
    max_bucket_size: int = Field(default=200, ge=2)
    bucket_fanout: int = Field(
        default=24, ge=1,
        description="in an LSH bucket of more entries than this, each entry is compared "
                    "with this many neighbours in a fixed pseudo-random order, not with all")
    min_shared_prompts: int = Field(default=1, ge=1)


class SplitSettings(_Section):
    """Time split on ``label_at`` plus an optional group held out whole."""

    train_fraction: float = Field(default=0.6, gt=0, lt=1)
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    holdout_property: str | None = "campaign"
    holdout_value: str | None = Field(
        default=None, description="None: hold out the group whose first label is the latest")
    train_cutoff: datetime | None = Field(
        default=None, description="labels before it train; overrides train_fraction")
    val_cutoff: datetime | None = Field(
        default=None, description="labels from it on test; overrides val_fraction")

    @model_validator(mode="after")
    def _fractions_leave_a_test_slice(self) -> SplitSettings:
        if self.train_fraction + self.val_fraction >= 1:
            raise ValueError("train_fraction + val_fraction must be below 1 to leave a test slice")
        if self.train_cutoff and self.val_cutoff and self.val_cutoff < self.train_cutoff:
            raise ValueError("val_cutoff must not be before train_cutoff")
        return self


class ModelSettings(_Section):
    layer_type: Literal["sage", "gat", "graph"] = "sage"
    hidden: int = Field(default=64, ge=4)
    layers: int = Field(default=2, ge=1, le=6)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    aggr: Literal["mean", "sum", "max"] = "mean"
    heads: int = Field(default=2, ge=1, le=16, description="attention heads (gat only)")
    norm: Literal["layer", "batch", "none"] = "layer"
    residual: bool = True
    relations: list[str] | None = Field(
        default=None,
        description="names in export.relationships the model passes messages along (null: "
                    "all); a relation left out is still exported and used for fleets, but the "
                    "model reads neither its edges nor its degrees")
    feature_dropout: float = Field(
        default=0.15, ge=0, lt=1,
        description="share of the labelled node type's input feature columns zeroed (their "
                    "mean after scaling) for all nodes at once in each training step: the "
                    "model cannot lean on one campaign's telltale column")
    companion: Literal["none", "trees"] = Field(
        default="trees",
        description="trees: gradient boosting on the labelled nodes' features and neighbour "
                    "aggregates, fitted on the same labels and saved with the GNN; an account "
                    "ranks by the higher of the two scores (training/companion.py)")
    companion_max_lift: float | None = Field(
        default=6.0, ge=0,
        description="logits by which the trees may raise an account above the GNN's own "
                    "score (6: odds at most e^6, about 400 times, the GNN's); null: no cap. "
                    "Where the GNN is sure an account is legitimate (a reviewed kind of "
                    "company team) the trees alone cannot flag it")


class TrainSettings(_Section):
    epochs: int = Field(default=200, ge=1)
    patience: int = Field(default=30, ge=1)
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    loss: Literal["weighted_bce", "focal"] = "weighted_bce"
    target_precision: float = Field(
        default=0.95, gt=0, le=1,
        description="estimated precision of the new flags (the accounts no label or audit "
                    "has decided) that the threshold must reach under operating_rule: "
                    "precision, and on the validation slice when there is no cross-fitting")
    operating_rule: Literal["expected_f1", "precision"] = Field(
        default="expected_f1",
        description="how the cross-fitted threshold is chosen from the queue's expected "
                    "fakes: expected_f1, the best F1 averaged over the prevalence's interval "
                    "(robust to the audit's uncertainty); precision, the lowest threshold "
                    "whose estimated precision reaches target_precision at the point "
                    "estimate")
    prevalence: float | None = Field(
        default=0.02, gt=0, lt=1,
        description="expected share of fakes among scored accounts; calibration, the "
                    "threshold and every reported metric are reweighted to it (null: "
                    "estimated at training time from the unlabelled accounts)")
    prevalence_from_audit: bool = Field(
        default=True,
        description="when the labels hold a random prevalence audit (export.labels."
                    "audit_source, at least 200 accounts), estimate the prevalence from it "
                    "with the model's predictions instead of train.prevalence")
    bootstrap: int = Field(default=200, ge=0,
                           description="bootstrap resamples for each metric's 95% interval")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    focal_gamma: float = Field(default=2.0, ge=0)
    balance_fleets: bool = Field(
        default=False,
        description="weight each labelled fake by 1 / its labelled fleet's size (times the "
                    "mean size), so every fleet teaches as much as the largest")
    calibration: Literal["platt", "isotonic"] = "platt"
    refit_on_all_labels: bool = Field(
        default=True,
        description="register a model refitted on every label (the newest included) for the "
                    "time-split run's best epoch count, with its calibration and threshold; "
                    "false: register the time-split run itself")
    crossfit_folds: int = Field(
        default=5, ge=0,
        description="with refit_on_all_labels: choose calibration and threshold on "
                    "out-of-fold scores of every labelled account from this many folds; 0 "
                    "or 1: the validation slice")
    crossfit_group_fleets: bool = Field(
        default=False,
        description="keep a labelled fleet's members in one cross-fitting fold: held-out "
                    "recall is then that of unseen fleets (fewer flags, for platforms where "
                    "new fleets dominate)")
    leave_one_campaign_out: bool = Field(
        default=True,
        description="at retrain, hold out every labelled campaign in turn (one GNN and two "
                    "baseline fits per campaign) and report, per campaign, recall within the "
                    "expected-fakes queue and recall at 1% FPR as labelled")
    min_epochs: int = Field(default=10, ge=1, description="no early stop before this epoch")
    sampler: Literal["full", "neighbor"] = Field(
        default="full", description="neighbor needs pyg-lib or torch-sparse")
    batch_size: int = Field(default=4096, ge=1, description="seed accounts per batch (neighbor)")
    num_neighbors: int = Field(default=10, ge=1, description="per relation per hop (neighbor)")


class TuneSettings(_Section):
    n_trials: int = Field(default=20, ge=1)
    timeout_s: float | None = None
    storage: str = "sqlite:///mlruns/optuna.db"
    study_name: str = "sybilgnn"
    pruner: Literal["median", "hyperband", "none"] = "median"
    objective: Literal["log_loss", "loco"] = Field(
        default="log_loss",
        description="log_loss: negative validation log loss at the population's prevalence; "
                    "loco: mean recall within the expected-fakes queue with each labelled "
                    "campaign held out in turn "
                    "(one more fit per campaign per trial). A study keeps its objective: "
                    "change tune.study_name when switching")
    adopt: Literal["separated", "best"] = Field(
        default="separated",
        description="separated: a retrain trains the best trial's parameters only when it "
                    "beats the configured trial beyond the noise (paired interval on the same "
                    "validation rows), else the configuration as it stands; best: always the "
                    "best trial")
    search_space: Path | None = None
    seed: int = 0
    trial_epochs: int | None = Field(default=None, ge=1, description="max epochs per trial; "
                                     "default train.epochs")
    pruner_warmup_epochs: int = Field(default=5, ge=0)
    pruner_startup_trials: int = Field(default=3, ge=0)
    heartbeat_interval_s: int = Field(default=10, ge=1)
    grace_period_s: int | None = Field(default=None, ge=1)

    @field_validator("storage")
    @classmethod
    def _storage_driver(cls, value: str) -> str:
        return with_postgres_driver(value)


class RegistrySettings(_Section):
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: Path = Path("mlruns/artifacts")
    experiment: str = "sybilgnn"
    model_name: str = "sybilgnn"
    promote_margin: float = Field(default=0.0, ge=0)
    promote_metric: str = "auprc"
    promote_split: Literal["test", "val", "holdout"] = "test"
    refresh_after_days: float | None = Field(
        default=14, gt=0,
        description="when the two models' 95% intervals overlap, still promote a challenger "
                    "that is not worse on the point estimate once the champion's labels are "
                    "this many days behind the newest; null: overlapping intervals always "
                    "keep the champion")
    loco_tolerance: float | None = Field(
        default=0.05, ge=0,
        description="the gate refits the champion's recipe with each labelled campaign held "
                    "out (as the retrain did the challenger's) and keeps the champion when the "
                    "challenger's interval of mean recall within the expected-fakes queue on "
                    "unseen campaigns lies "
                    "below the champion's by more than this; null: no such check")
    lock_file: Path = Path("mlruns/retrain.lock")
    promotion_wait_s: float = Field(
        default=1800, ge=0,
        description="how long a promotion waits for another one on the same registered model "
                    "(the registry's lease, shared by every machine on the registry) before "
                    "it gives up without promoting")
    lease_stale_s: float = Field(
        default=3600, gt=0,
        description="a promotion lease older than this belongs to a process that died and is "
                    "taken over")

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_driver(cls, value: str) -> str:
        return with_postgres_driver(value)  # a database store without a server


class ScoringSettings(_Section):
    batch_size: int = Field(default=10_000, gt=0)
    model_alias: str = "champion"
    min_fleet_size: int = Field(default=3, ge=2)
    fleet_stability_jaccard: float = Field(default=0.5, gt=0, le=1)
    report_dir: Path = Path(".sybilgnn/reports")
    fleet_max_shared_accounts: int = Field(
        default=500, ge=2,
        description="an IP or instrument used by more accounts (NAT, offices) links no fleet")
    fleet_split: bool = Field(
        default=True,
        description="split large components into Louvain communities, so that fleets bridged "
                    "by a few links come out separate; false: fleets are plain components")
    fleet_split_min_size: int = Field(
        default=50, ge=2, description="components with at least this many accounts are split")
    fleet_split_resolution: float = Field(
        default=2.0, gt=0,
        description="Louvain resolution per 1,000 accounts of the component (scaled with its "
                    "size against modularity's resolution limit); higher gives more, smaller "
                    "fleets")
    fleet_split_similarity_weight: float = Field(
        default=1.0, gt=0,
        description="Louvain weight of a prompt-similarity link; an IP or instrument used by "
                    "k accounts adds 1/(k-1) to each pair of them")
    evidence_top_k: int = Field(default=5, ge=1, le=50)
    auto_resume: bool = True
    drift_warn: float = Field(
        default=0.25, gt=0,
        description="warn when a model input's population stability index against the "
                    "training snapshot exceeds this (0.1 moderate, 0.25 major shift)")


class Settings(_Section):
    neo4j: Neo4jSettings = Neo4jSettings()
    hashing: HashingSettings = HashingSettings()
    simulate: SimulateSettings = SimulateSettings()
    ingest: IngestSettings = IngestSettings()
    similarity: SimilaritySettings = SimilaritySettings()
    split: SplitSettings = SplitSettings()
    export: ExportSettings = ExportSettings()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    tune: TuneSettings = TuneSettings()
    registry: RegistrySettings = RegistrySettings()
    scoring: ScoringSettings = ScoringSettings()

    def resolved_password(self) -> str:
        """Password from the setting, else from the owner-only password file."""
        if self.neo4j.password:
            return self.neo4j.password
        path = self.neo4j.password_file
        if not path.exists():
            raise ConfigError(
                f"neo4j.password_file: {path} does not exist; run `sybilgnn neo4j start` for the "
                "local server, or set SYBILGNN__NEO4J__PASSWORD for a remote one"
            )
        return path.read_text().strip()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def with_postgres_driver(url: str) -> str:
    """``postgresql://`` / ``postgres://`` with the driver the ``postgres`` extra installs
    (psycopg2) named: SQLAlchemy 2.1 made psycopg 3 the default for a bare URL, which the
    extra does not install. A URL that names its driver is left as it is. Applied when
    ``tune.storage`` and ``registry.tracking_uri`` are read, so every user of them gets it."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def _set_nested(tree: dict[str, Any], dotted: str, value: Any, origin: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"{origin}: key {dotted!r} must look like section.key")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {dotted!r} goes through a value, not a section")
        node = child
    node[parts[-1]] = value


def _parse_scalar(raw: str) -> Any:
    """YAML-parse an override so that numbers, booleans and null keep their types."""
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build validated settings from defaults, file, environment and ``key=value`` overrides."""
    tree: dict[str, Any] = {}
    path = Path(config_file) if config_file else Path(DEFAULT_CONFIG_FILE)
    if config_file and not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        tree.update(loaded)
    env = os.environ if environ is None else environ
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
            _set_nested(tree, dotted, _parse_scalar(raw), f"environment variable {name}")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        _set_nested(tree, key.strip(), _parse_scalar(raw), f"--set {item!r}")
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"{key}: unknown key (value {err.get('input')!r})")
            else:
                problems.append(f"{key}: {err['msg']} (value {err.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
