"""Initial load of an empty database with ``neo4j-admin database import full``.

Transactional ``UNWIND`` writes top out near 15,000 relationships per second on a 2-core
machine (Cypher's MERGE and the transaction log dominate), far too slow for a platform's first
load. For an *empty* database on the package's own server, the same validated, hashed and
aggregated frames are written as CSV and loaded offline by the admin tool, which writes the
store files directly. The server is stopped for the import and started again afterwards;
constraints, indexes and the ingest ledger are created once it is back.

Everything the transactional path stores comes out identical (tests compare both paths
property by property): node and relationship properties, prompt state and ``f_*`` features,
which are computed here in pandas from the same frames instead of being read back from Neo4j.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError
from sybilgnn.features.account_features import ACCOUNT_FEATURES, compute_account_features
from sybilgnn.neo4j.server import LocalNeo4j

__all__ = ["BulkFrames", "BulkImportError", "feature_inputs", "import_stages",
           "write_import_csvs", "run_import"]

ARRAY_DELIMITER = ";"


class BulkImportError(SybilgnnError):
    """The admin import failed; the message carries the tool's output and what to do."""


@dataclass
class BulkFrames:
    """One delivery, reduced to the rows the graph stores (see ``loaders``' frame builders)."""

    accounts: pd.DataFrame  # account_id, created_ms, country, plan (+ labels, state, f_*)
    ip_nodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    used_ip: pd.DataFrame = field(default_factory=pd.DataFrame)
    pm_nodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    paid_with: pd.DataFrame = field(default_factory=pd.DataFrame)
    similar: pd.DataFrame = field(default_factory=pd.DataFrame)


def _per_account(frame: pd.DataFrame, aggregations: dict[str, tuple[str, str]]) -> pd.DataFrame:
    return frame.groupby("account_id", sort=False).agg(**aggregations)


def feature_inputs(frames: BulkFrames, state: pd.DataFrame | None) -> pd.DataFrame:
    """The columns ``compute_account_features`` reads, as ``derived.FEATURE_INPUT_QUERY``
    would return them: counts and sums are 0 without relationships, minima and maxima null."""
    acc = frames.accounts[["account_id", "created_ms", "country"]].set_index("account_id")
    parts: list[pd.DataFrame] = []
    if not frames.used_ip.empty:
        ip = frames.used_ip.merge(frames.ip_nodes[["ip_id", "is_datacenter"]], on="ip_id")
        ip["dc_n"] = np.where(ip["is_datacenter"].to_numpy(bool), ip["n"], 0)
        parts.append(_per_account(ip, {"n_ips": ("n", "size"), "ip_events": ("n", "sum"),
                                       "dc_events": ("dc_n", "sum"),
                                       "ip_first_ms": ("first_ms", "min"),
                                       "ip_last_ms": ("last_ms", "max")}))
    if not frames.paid_with.empty:
        pay = frames.paid_with.merge(frames.pm_nodes[["pm_id", "is_prepaid", "issuer_country"]],
                                     on="pm_id")
        country = acc["country"].reindex(pay["account_id"]).to_numpy(object)
        pay["prepaid"] = pay["is_prepaid"].to_numpy(bool).astype(np.int64)
        pay["foreign"] = (pay["issuer_country"].to_numpy(object) != country).astype(np.int64)
        parts.append(_per_account(pay, {"n_instruments": ("n", "size"),
                                        "n_charges": ("n", "sum"),
                                        "prepaid_instruments": ("prepaid", "sum"),
                                        "foreign_instruments": ("foreign", "sum"),
                                        "pay_first_ms": ("first_ms", "min")}))
    if not frames.similar.empty:
        ends = pd.DataFrame({
            "account_id": np.concatenate([frames.similar["account_a"].to_numpy(object),
                                          frames.similar["account_b"].to_numpy(object)]),
            "similarity": np.tile(frames.similar["similarity"].to_numpy(np.float64), 2)})
        parts.append(_per_account(ends, {"n_similar": ("similarity", "size"),
                                         "max_similarity": ("similarity", "max")}))
    if state is not None and not state.empty:
        parts.append(state.set_index("account_id"))
    inputs = acc.drop(columns=["country"]).join(parts, how="left") if parts else acc[["created_ms"]]
    for col in ("n_ips", "ip_events", "dc_events", "n_instruments", "n_charges",
                "prepaid_instruments", "foreign_instruments", "n_similar"):
        inputs[col] = inputs[col].fillna(0).astype(np.int64) if col in inputs else 0
    return inputs.reset_index()


def account_table(frames: BulkFrames, labels: pd.DataFrame | None, label_columns: list[str],
                  state: pd.DataFrame | None) -> pd.DataFrame:
    """Every Account property of the delivery in one frame (nullable where absent)."""
    table = frames.accounts[["account_id", "created_ms", "country", "plan"]]
    extra = []
    if labels is not None:
        extra.append(labels[label_columns].rename(columns={"source": "label_source"}))
    if state is not None and not state.empty:
        extra.append(state)
    features = compute_account_features(feature_inputs(frames, state))
    extra.append(features[["account_id", *ACCOUNT_FEATURES]])
    for part in extra:
        table = table.merge(part, on="account_id", how="left")
        # a left join turns integer columns with gaps into floats; Neo4j must still get longs
        for column in part.columns:
            if pd.api.types.is_integer_dtype(part[column]) and column != "account_id":
                table[column] = table[column].astype("Int64")
    return table


# ---- CSV with typed headers --------------------------------------------------------------
# The cells are built and written by Arrow (C++), not by pandas' Python-level CSV writer: at
# 100,000 accounts (1.1 M rows, 55 MB of account properties) that is the difference between
# 12.5 s and 3.8 s. Strings are always quoted (embedded quotes doubled), missing values are
# empty unquoted cells, which the admin tool stores as no property.
_CSV_BODY = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


def _column_type(series: pd.Series) -> str:
    """The import header type that stores what the driver would store for these values."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_float_dtype(series):
        return "double"
    sample = next((v for v in series if v is not None and v is not pd.NA
                   and not (isinstance(v, float) and np.isnan(v))), None)
    # object columns hold text or the integer lists of the prompt state (agg_days, ...)
    return "long[]" if isinstance(sample, (list, tuple, np.ndarray)) else "string"


def _iso_ms(values: pd.Series) -> pa.Array:
    """Epoch milliseconds as ISO-8601 UTC text (``2024-04-04T00:08:54.000Z``), the admin
    tool's ``datetime`` format; null where missing."""
    present = values.notna().to_numpy()
    millis = np.zeros(len(values), dtype=np.int64)
    millis[present] = values[present].to_numpy(np.int64)
    stamps = pa.array(millis, type=pa.timestamp("ms"), mask=~present)
    return pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _cells(series: pd.Series, kind: str) -> pa.Array:
    """One column as the Arrow array whose CSV rendering the admin tool parses as ``kind``."""
    if kind == "datetime":
        return _iso_ms(series)
    if kind == "long[]":
        lists = pa.array([v if isinstance(v, (list, tuple, np.ndarray)) and len(v) else None
                          for v in series], type=pa.list_(pa.int64()))
        return pc.binary_join(pc.cast(lists, pa.list_(pa.string())), ARRAY_DELIMITER)
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(series) and not series.isna().any():
            return pa.array(series.to_numpy(bool))
        return pa.array([None if _is_missing(v) else bool(v) for v in series], type=pa.bool_())
    if kind in ("long", "double"):
        return pa.array(series, type=pa.int64() if kind == "long" else pa.float64(),
                        from_pandas=True)
    values = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or other objects: their str()
        return pa.array([None if _is_missing(v) else str(v) for v in values], type=pa.string())


def _write_csv(path: Path, frame: pd.DataFrame, header: dict[str, str],
               types: dict[str, str]) -> bool:
    """Write ``frame`` with ``header`` names (``column -> name:type``); True when a string
    cell holds a line break (the tool must then parse multi-line fields, which is slower)."""
    arrays, names = [], []
    multiline = False
    for column, name in header.items():
        kind = types.get(column, "string")
        cells = _cells(frame[column], kind)
        arrays.append(cells)
        names.append(name if ":" in name or kind == "string" else f"{name}:{kind}")
        if kind == "string" and not multiline and len(cells):
            multiline = bool(pc.any(pc.match_substring_regex(cells, "[\\r\\n]")).as_py())
    with open(path, "wb") as out:
        out.write((",".join(names) + "\n").encode())
        pa_csv.write_csv(pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))]), out,
                         _CSV_BODY)
    return multiline


def _typed(frame: pd.DataFrame, fixed: dict[str, str]) -> dict[str, str]:
    return {c: fixed.get(c) or _column_type(frame[c]) for c in frame.columns}


class _NodeIds:
    """Store ids for the import: each label's keys get a dense block of integers.

    The tool runs with ``--id-type=actual``, so these integers are the nodes' ids in the
    store and relationships name their ends by them. That skips the tool's string-id
    mapping, which at 1 M accounts was half of its time (relationship import 70.7 s with
    string ids, 23.7 s with actual ids; the whole tool 130 s against 64 s).
    """

    def __init__(self) -> None:
        self.next_id = 0
        self.blocks: dict[str, tuple[pd.Index, int]] = {}

    def assign(self, label: str, keys: pd.Series) -> np.ndarray:
        index = pd.Index(keys.to_numpy(object))
        if not index.is_unique:
            raise BulkImportError(f"{label} keys are not unique in the import frames; this is "
                                  "a bug in sybilgnn (rows are deduplicated before the import)")
        self.blocks[label] = (index, self.next_id)
        ids = np.arange(self.next_id, self.next_id + len(index), dtype=np.int64)
        self.next_id += len(index)
        return ids

    def lookup(self, label: str, keys: pd.Series, what: str) -> np.ndarray:
        index, first = self.blocks[label]
        positions = index.get_indexer(keys.to_numpy(object))
        if (positions < 0).any():
            missing = keys.to_numpy(object)[positions < 0][0]
            raise BulkImportError(f"{what} names {label} {missing!r}, which is not among the "
                                  "imported nodes; this is a bug in sybilgnn (unknown accounts "
                                  "are quarantined before the import)")
        return positions.astype(np.int64) + first


def write_import_csvs(directory: Path, accounts: pd.DataFrame,
                      frames: BulkFrames) -> tuple[list[str], bool]:
    """The CSV files and the admin tool's ``--nodes``/``--relationships`` arguments (for
    ``--id-type=actual``: see ``_NodeIds``).

    Returns the arguments and whether any string holds a line break.
    """
    args: list[str] = []
    node_ids = _NodeIds()
    times = {"created_ms": "datetime", "labelled_ms": "datetime", "first_ms": "datetime",
             "last_ms": "datetime"}
    renamed = {"created_ms": "created_at", "labelled_ms": "label_at"}
    node_files = [("Account", "account_id", accounts, renamed, times),
                  ("IP", "ip_id", frames.ip_nodes, {}, {}),
                  ("PaymentInstrument", "pm_id", frames.pm_nodes, {}, {})]
    multiline = False
    for label, key, nodes, names, fixed in node_files:
        if nodes.empty and label != "Account":
            continue
        path = directory / f"{label}.csv"
        with_ids = nodes.assign(_store_id=node_ids.assign(label, nodes[key]))
        header = {"_store_id": ":ID", **{c: names.get(c, c) for c in nodes.columns}}
        types = {**_typed(nodes, fixed), "_store_id": "long", key: "string"}
        multiline |= _write_csv(path, with_ids, header, types)
        args.append(f"--nodes={label}={path}")
    rel_files = [
        ("USED_IP", frames.used_ip, ("account_id", "Account"), ("ip_id", "IP"),
         {"first_ms": "first_seen", "last_ms": "last_seen", "n": "n_events"}),
        ("PAID_WITH", frames.paid_with, ("account_id", "Account"), ("pm_id", "PaymentInstrument"),
         {"first_ms": "first_seen", "n": "n_charges"}),
        ("PROMPT_SIMILAR", frames.similar, ("account_a", "Account"), ("account_b", "Account"),
         {"similarity": "similarity", "n_shared": "n_shared"}),
    ]
    for rel_type, rels, (start_col, start_label), (end_col, end_label), props in rel_files:
        if rels.empty:
            continue
        path = directory / f"{rel_type}.csv"
        ends = pd.DataFrame({
            "_start": node_ids.lookup(start_label, rels[start_col], rel_type),
            "_end": node_ids.lookup(end_label, rels[end_col], rel_type)}, index=rels.index)
        values = rels[list(props)]
        frame = pd.concat([ends, values], axis=1)
        header = {"_start": ":START_ID", "_end": ":END_ID", **props}
        types = {**_typed(values, times), "_start": "long", "_end": "long"}
        multiline |= _write_csv(path, frame, header, types)
        args.append(f"--relationships={rel_type}={path}")
    return args, multiline


# Below this many rows the import's fixed cost (JVM warm-up) outweighs its work: the quick
# C1 compiler halves the tool's start-up (a 2-row import: 5.6 s instead of 12.6 s), while
# larger imports want the optimising compiler (1.1 M rows, the 100k-account simulation:
# 25.0 s with it against 32.4 s with C1 alone, idle 2-core box).
QUICK_JIT_MAX_ROWS = 200_000


_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h)\b")
_STAGE_LINE = re.compile(r"^(?:\(\d+/\d+\) )?(.+?) COMPLETED in (.+?)\s*$"
                         r"|^IMPORT DONE in (.+?)\.?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def import_stages(output: str) -> dict[str, float]:
    """The admin tool's own stage times from its report (``Node import COMPLETED in 10s
    476ms`` ...), plus ``tool total`` from ``IMPORT DONE in ...``; the rest of the import's
    wall time is JVM start, store preparation and the server stop."""
    stages: dict[str, float] = {}
    for line in output.splitlines():
        match = _STAGE_LINE.match(line.strip())
        if match is None:
            continue
        if match.group(3) is not None:
            stages["tool total"] = round(_seconds(match.group(3)), 3)
        else:
            stages[match.group(1).lower()] = round(_seconds(match.group(2)), 3)
    return stages


def run_import(settings: Settings, directory: Path, file_args: list[str], *, multiline: bool,
               rows: int, on_phase: Callable[[str], None] | None = None) -> dict[str, float]:
    """Stop the managed server, import into ``neo4j.database``, and start the server again.

    Returns the tool's stage times (``import_stages``). The server is restarted even when
    the import fails, so a failed first load leaves a running server with an empty database
    and an error that quotes the tool's output.
    """
    server = LocalNeo4j(settings.neo4j)
    jvm = ("-XX:+UseSerialGC",) + (("-XX:TieredStopAtLevel=1",)
                                   if rows < QUICK_JIT_MAX_ROWS else ())
    server.stop()
    try:
        proc = server.run_admin(
            "database", "import", "full", settings.neo4j.database,
            "--overwrite-destination=true", "--id-type=actual",
            f"--array-delimiter={ARRAY_DELIMITER}",
            f"--multiline-fields={'true' if multiline else 'false'}",
            f"--report-file={directory / 'import.report'}", *file_args, jvm_options=jvm)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
            raise BulkImportError(
                f"neo4j-admin database import failed (exit {proc.returncode}); the database "
                f"is left empty. Rerun with --set ingest.mode=transactional to load through "
                f"Cypher instead, or fix the cause below:\n{tail}")
        if on_phase:
            on_phase("import")
    finally:
        server.start()
        if on_phase:
            on_phase("restart")
    return import_stages(proc.stdout + proc.stderr)


def import_workdir(settings: Settings) -> Path:
    """A scratch folder beside the server's data (same disk; removed by the caller)."""
    base = settings.neo4j.home.resolve() / "import"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="bulk-", dir=base))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
