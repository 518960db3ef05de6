"""Read event tables (Parquet or CSV) and split them into clean typed rows and quarantined rows.

A row with any bad cell is quarantined (one record per bad cell: file, 1-based data row,
column, reason) and the rest of the file still loads. A missing required *column* makes the
whole file unusable, which is an ``InputError`` naming the file and the column.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sybilgnn.errors import InputError

__all__ = [
    "TABLE_ORDER",
    "EVENT_TABLES",
    "REQUIRED_COLUMNS",
    "SENSITIVE_COLUMNS",
    "TableFile",
    "ValidatedTable",
    "find_tables",
    "file_digest",
    "read_table",
    "validate_table",
]

TABLE_ORDER = ["accounts", "labels", "ip_events", "payments", "prompts"]
EVENT_TABLES = ["labels", "ip_events", "payments", "prompts"]
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "accounts": ["account_id", "created_at", "country", "plan"],
    "labels": ["account_id", "label", "source", "labelled_at"],
    "ip_events": ["account_id", "ip", "timestamp", "asn", "is_datacenter"],
    "payments": ["account_id", "instrument_token", "bin", "issuer_country", "is_prepaid",
                 "timestamp"],
    "prompts": ["account_id", "timestamp"],
}
OPTIONAL_COLUMNS: dict[str, list[str]] = {"labels": ["campaign", "fleet"],
                                          "prompts": ["text", "minhash"]}
SENSITIVE_COLUMNS = {"ip", "instrument_token"}
PLANS = {"free", "pro", "team", "api"}
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_BIN = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class TableFile:
    table: str
    path: Path


@dataclass
class ValidatedTable:
    """Clean rows (typed; ``_row`` keeps the 1-based data row) and quarantine records."""

    table: str
    path: Path
    digest: str
    rows_read: int
    clean: pd.DataFrame
    quarantine: list[dict[str, object]] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return len({int(r["row"]) for r in self.quarantine})  # type: ignore[call-overload]


def find_tables(directory: Path) -> list[TableFile]:
    """The known tables present in ``directory``, in load order; ``accounts`` is required."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of event tables")
    found: list[TableFile] = []
    for table in TABLE_ORDER:
        candidates = [p for p in (directory / f"{table}.parquet", directory / f"{table}.csv")
                      if p.exists()]
        if len(candidates) > 1:
            raise InputError(f"{directory} holds both {table}.parquet and {table}.csv; keep one")
        if candidates:
            found.append(TableFile(table, candidates[0]))
    if not any(t.table == "accounts" for t in found):
        raise InputError(f"{directory} has no accounts.parquet or accounts.csv; the accounts "
                         "table is required (see docs/data-format.md)")
    return found


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: the ingest ledger's key, so a re-ingest is a no-op."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """Parquet as stored, CSV as strings (empty cells are missing; 'NA' stays a country)."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise InputError(f"{path}: cannot be read as {path.suffix[1:]}: {exc}") from None


# ---- cell validators: each returns (parsed series, bad mask, reason) --------------------------
Check = tuple[pd.Series, np.ndarray, str]


def _missing(series: pd.Series) -> np.ndarray:
    text = series.astype("string")
    return (series.isna() | (text.str.strip() == "")).to_numpy(dtype=bool)


def _text(series: pd.Series) -> Check:
    return series.astype("string").str.strip().astype(object), _missing(series), "missing value"


def _timestamp(series: pd.Series) -> Check:
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series if series.dt.tz is not None else series.dt.tz_localize("UTC")
        parsed = parsed.dt.tz_convert("UTC")
    else:
        parsed = pd.to_datetime(series.astype("string"), utc=True, errors="coerce",
                                format="ISO8601")
    bad = parsed.isna().to_numpy(dtype=bool)
    ms = parsed.astype("datetime64[ns, UTC]").astype("int64") // 1_000_000
    return ms.where(~bad, 0).astype(np.int64), bad, "unparsable timestamp (expected ISO-8601 UTC)"


def _integer(series: pd.Series) -> Check:
    numbers = pd.to_numeric(series, errors="coerce")
    bad = (numbers.isna() | (numbers != np.floor(numbers.fillna(0)))).to_numpy(dtype=bool)
    return numbers.fillna(0).astype(np.int64), bad, "not an integer"


def _boolean(series: pd.Series) -> Check:
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.astype(bool), np.zeros(len(series), dtype=bool), "not a boolean"
    text = series.astype("string").str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE).fillna(False), text.isin(_FALSE).fillna(False)
    bad = ~(is_true | is_false).to_numpy(dtype=bool)
    return is_true.astype(bool), bad, "not a boolean (true/false/1/0)"


def _pattern(regex: re.Pattern[str], reason: str, upper: bool = False) -> Callable[[pd.Series], Check]:
    def check(series: pd.Series) -> Check:
        text = series.astype("string").str.strip()
        bad = ~text.str.fullmatch(regex.pattern).fillna(False).to_numpy(dtype=bool)
        return (text.str.upper() if upper else text).astype(object), bad, reason
    return check


def _choice(allowed: set[str]) -> Callable[[pd.Series], Check]:
    def check(series: pd.Series) -> Check:
        text = series.astype("string").str.strip().str.lower()
        bad = ~text.isin(allowed).fillna(False).to_numpy(dtype=bool)
        return text.astype(object), bad, f"not one of {sorted(allowed)}"
    return check


def _label(series: pd.Series) -> Check:
    numbers = pd.to_numeric(series, errors="coerce")
    bad = ~numbers.isin([0, 1]).to_numpy(dtype=bool)
    return numbers.fillna(-1).astype(np.int64), bad, "label must be 0 (legit) or 1 (fake)"


def _ip(series: pd.Series) -> Check:
    text = series.astype("string").str.strip()
    valid: dict[str, bool] = {}
    for value in text.dropna().unique():
        try:
            ipaddress.ip_address(value)
            valid[value] = True
        except ValueError:
            valid[value] = False
    bad = ~text.map(valid).fillna(False).to_numpy(dtype=bool)
    return text.astype(object), bad, "not an IPv4/IPv6 address"


def _minhash_checker(num_perm: int) -> Callable[[pd.Series], Check]:
    def parse(value: object) -> list[int] | None:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return None
        if value is None or isinstance(value, float):
            return None
        try:
            items = [int(v) for v in value]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            return None
        if len(items) != num_perm or any(v < 0 or v >= 2**64 for v in items):
            return None
        return items

    def check(series: pd.Series) -> Check:
        parsed = series.map(parse)
        bad = parsed.isna().to_numpy(dtype=bool)
        return parsed, bad, f"minhash must be a list of {num_perm} unsigned 64-bit integers"
    return check


def _checks(table: str, columns: list[str], num_perm: int) -> dict[str, Callable[[pd.Series], Check]]:
    country = _pattern(_COUNTRY, "country must be an ISO-2 code", upper=True)
    table_checks: dict[str, dict[str, Callable[[pd.Series], Check]]] = {
        "accounts": {"account_id": _text, "created_at": _timestamp, "country": country,
                     "plan": _choice(PLANS)},
        "labels": {"account_id": _text, "label": _label, "source": _text,
                   "labelled_at": _timestamp},
        "ip_events": {"account_id": _text, "ip": _ip, "timestamp": _timestamp,
                      "asn": _integer, "is_datacenter": _boolean},
        "payments": {"account_id": _text, "instrument_token": _text,
                     "bin": _pattern(_BIN, "bin must be 6 digits"), "issuer_country": country,
                     "is_prepaid": _boolean, "timestamp": _timestamp},
        "prompts": {"account_id": _text, "timestamp": _timestamp},
    }
    checks = table_checks[table]
    if table == "prompts":
        if "text" in columns:
            checks["text"] = lambda s: (s.astype("string").fillna("").astype(object),
                                        s.isna().to_numpy(dtype=bool), "missing text")
        else:
            checks["minhash"] = _minhash_checker(num_perm)
    return checks


def validate_table(table: str, path: Path, frame: pd.DataFrame, *, digest: str,
                   num_perm: int) -> ValidatedTable:
    """Typed clean rows plus quarantine records; raises when a required column is absent."""
    columns = list(frame.columns)
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in columns]
    if table == "prompts" and "text" not in columns and "minhash" not in columns:
        missing.append("text (or minhash)")
    if missing:
        raise InputError(f"{path}: missing required column(s) {', '.join(missing)}; "
                         f"{table} needs {', '.join(REQUIRED_COLUMNS[table])} "
                         "(see docs/data-format.md)")
    frame = frame.reset_index(drop=True)
    clean = pd.DataFrame({"_row": np.arange(1, len(frame) + 1, dtype=np.int64)})
    bad_any = np.zeros(len(frame), dtype=bool)
    records: list[dict[str, object]] = []
    for column, check in _checks(table, columns, num_perm).items():
        raw = frame[column]
        parsed, bad, reason = check(raw)
        missing_cells = _missing(raw) if column != "minhash" else raw.isna().to_numpy(dtype=bool)
        for i in np.flatnonzero(bad):
            value = raw.iloc[i]
            shown = "<redacted>" if column in SENSITIVE_COLUMNS else str(value)[:80]
            records.append({"file": path.name, "row": int(i) + 1, "column": column,
                            "reason": "missing value" if missing_cells[i] else reason,
                            "value": "" if missing_cells[i] else shown})
        bad_any |= bad
        clean[column] = parsed.to_numpy() if hasattr(parsed, "to_numpy") else parsed
    for column in OPTIONAL_COLUMNS.get(table, []):
        if column in columns and column not in clean:
            values = frame[column].astype("string").str.strip()
            clean[column] = values.where(values != "", None).astype(object).to_numpy()
    clean = clean[~bad_any].reset_index(drop=True)
    return ValidatedTable(table=table, path=path, digest=digest, rows_read=len(frame),
                          clean=clean, quarantine=records)


def reject_rows(validated: ValidatedTable, mask: np.ndarray, column: str, reason: str) -> None:
    """Move clean rows selected by ``mask`` to quarantine with one shared reason."""
    if not mask.any():
        return
    for row in validated.clean.loc[mask, "_row"].tolist():
        validated.quarantine.append({"file": validated.path.name, "row": int(row),
                                     "column": column, "reason": reason,
                                     "value": ""})
    validated.clean = validated.clean[~mask].reset_index(drop=True)
