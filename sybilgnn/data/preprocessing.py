"""The model's own preprocessing: fitted once on the training snapshot, applied everywhere.

A ``Preprocessor`` turns a snapshot's raw node properties (``Snapshot.raw``) into the feature
matrices a model was trained on: z-scores with the training means and deviations, one-hots
over the training vocabularies (a value never seen in training, or a missing one, goes to
``<other>``), a fixed column order, and the edge-weight transform each relationship had.
It also keeps each input's training distribution (decile bins, category shares), so that a
scoring run can say how far today's inputs have moved (``drift``).

Nothing is refitted after training: the preprocessor is saved in the model artefact and
every place where the model meets data (scoring, evaluation, the promotion gate, evidence)
calls ``transform``. A snapshot whose schema grew (new properties, countries, ASNs) still
transforms; one that lacks an input the model needs is an ``InputError`` naming it.

Node types without raw columns (synthetic snapshots built directly as matrices) are taken
as already encoded: their columns are matched by name, with identity scaling.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from sybilgnn.data.snapshot import RawFeatures, Snapshot
from sybilgnn.errors import InputError

__all__ = ["OTHER", "CONSTANT", "NumericInput", "CategoricalInput", "NodeEncoder",
           "Preprocessor", "population_stability"]

OTHER = "<other>"
CONSTANT = "__constant__"
FORMAT = 1
_DRIFT_BINS = 10
_PSI_FLOOR = 1e-4  # share given to an empty bin, so the log stays finite


@dataclass(frozen=True)
class NumericInput:
    """One numeric column: its training mean and deviation, and its training distribution
    over decile bins (``expected[0]`` is the share of missing values)."""

    name: str
    mean: float
    std: float
    edges: tuple[float, ...]
    expected: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.name

    def bin_shares(self, values: np.ndarray) -> np.ndarray:
        known = values[~np.isnan(values)]
        counts = np.bincount(np.searchsorted(np.asarray(self.edges), known, side="right"),
                             minlength=len(self.edges) + 1).astype(np.float64)
        shares = np.concatenate([[values.size - known.size], counts])
        return shares / max(values.size, 1)


@dataclass(frozen=True)
class CategoricalInput:
    """One categorical property: its training vocabulary (ranked by count, then value) and
    the training share of each value, ``<other>`` last."""

    prop: str
    vocabulary: tuple[str, ...]
    expected: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.prop

    @property
    def columns(self) -> list[str]:
        return [f"{self.prop}={v}" for v in self.vocabulary] + [f"{self.prop}={OTHER}"]

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Column index of every value; unseen and missing values are ``<other>``."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        position = {v: i for i, v in enumerate(self.vocabulary)}
        other = len(self.vocabulary)
        column_of = np.asarray([position.get(str(u), other) for u in uniques] + [other],
                               dtype=np.int64)  # the last entry: missing (code -1)
        return column_of[codes]

    def bin_shares(self, values: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.codes(values), minlength=len(self.vocabulary) + 1)
        return counts.astype(np.float64) / max(len(values), 1)


@dataclass(frozen=True)
class NodeEncoder:
    """How one node type's raw properties become its feature matrix.

    ``encoded=True``: the snapshot's matrix is taken as is, its columns matched by name.
    """

    numeric: tuple[NumericInput, ...]
    categorical: tuple[CategoricalInput, ...]
    encoded: bool = False

    @property
    def columns(self) -> list[str]:
        names = [n.name for n in self.numeric]
        for cat in self.categorical:
            names += cat.columns
        return names or [CONSTANT]

    @property
    def stats(self) -> dict[str, list[float]]:
        """Mean and deviation per column (one-hots: 0 and 1), to show raw values again."""
        width = len(self.columns) - len(self.numeric)
        return {"mean": [n.mean for n in self.numeric] + [0.0] * width,
                "std": [n.std for n in self.numeric] + [1.0] * width}


def _distribution(values: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    known = values[~np.isnan(values)]
    if known.size == 0:
        edges: tuple[float, ...] = ()
    else:
        quantiles = np.quantile(known, np.linspace(0, 1, _DRIFT_BINS + 1)[1:-1])
        edges = tuple(float(q) for q in np.unique(quantiles))
    probe = NumericInput("", 0.0, 1.0, edges, ())
    return edges, tuple(float(s) for s in probe.bin_shares(values))


def _fit_numeric(name: str, values: np.ndarray) -> NumericInput:
    """Mean and population deviation over the known values (0 and 1 when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    known = values[~np.isnan(values)]
    mean = float(known.mean()) if known.size else 0.0
    centred = known - mean
    std = float(np.sqrt(np.square(centred).sum() / known.size)) if known.size else 0.0
    edges, expected = _distribution(values)
    return NumericInput(name, mean, std if std > 1e-12 else 1.0, edges, expected)


def _fit_categorical(prop: str, values: np.ndarray, top_k: int) -> CategoricalInput:
    """The ``top_k`` most frequent values by text (ties by value); 1 and "1" are one value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    by_text: dict[str, int] = {}
    for unique, count in zip(uniques, counts):
        by_text[str(unique)] = by_text.get(str(unique), 0) + int(count)
    vocabulary = tuple(sorted(by_text, key=lambda t: (-by_text[t], t))[:top_k])
    probe = CategoricalInput(prop, vocabulary, ())
    return CategoricalInput(prop, vocabulary, tuple(float(s) for s in probe.bin_shares(values)))


def population_stability(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins; empty bins count as a small share."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Preprocessor:
    """Everything fitted on data that the model needs to read a snapshot, as one object."""

    nodes: dict[str, NodeEncoder]
    edge_transforms: dict[str, str] = field(default_factory=dict)
    fitted_on: str = ""

    # -- fitting ---------------------------------------------------------------------
    @classmethod
    def fit_raw(cls, raw: dict[str, RawFeatures], top_k: dict[str, dict[str, int]], *,
                edge_transforms: dict[str, str] | None = None, fitted_on: str = ""
                ) -> Preprocessor:
        """Fit on raw columns; ``top_k[node_type][prop]`` bounds each vocabulary."""
        nodes = {}
        for node_type, columns in raw.items():
            numeric = tuple(_fit_numeric(name, values) for name, values in columns.numeric.items())
            sizes = top_k.get(node_type, {})
            absent = [prop for prop in columns.categorical if prop not in sizes]
            if absent:
                raise InputError(f"{node_type} properties {absent} are categorical but have no "
                                 f"vocabulary size; set export.nodes.{node_type}.categorical")
            categorical = tuple(_fit_categorical(prop, values, sizes[prop])
                                for prop, values in columns.categorical.items())
            nodes[node_type] = NodeEncoder(numeric, categorical)
        return cls(nodes, dict(edge_transforms or {}), fitted_on)

    @classmethod
    def fit(cls, snapshot: Snapshot) -> Preprocessor:
        """Fit on a snapshot: its raw columns, or its matrices where it has none.

        Matrices are taken as already encoded only for snapshots built as matrices (tests,
        synthetic worlds): an export without raw columns predates them and must be redone,
        or the model would read each later export's own scaling.
        """
        if not snapshot.raw and "schema" in snapshot.meta:
            raise InputError("this exported snapshot has no raw feature columns (it was saved "
                             "by an older sybilgnn); export it again (`sybilgnn export`) "
                             "before training on it")
        fitted = cls.fit_raw(dict(snapshot.raw), _vocabulary_sizes(snapshot),
                             edge_transforms=_edge_transforms(snapshot),
                             fitted_on=snapshot.content_hash)
        for node_type in snapshot.data.node_types:
            if node_type in fitted.nodes:
                continue
            names = list(snapshot.feature_names.get(node_type, []))
            x = snapshot.data[node_type].get("x")
            matrix = (np.zeros((int(snapshot.data[node_type].num_nodes or 0), 0)) if x is None
                      else x.detach().cpu().numpy().astype(np.float64))
            if len(names) != matrix.shape[1]:
                names = [f"x{j}" for j in range(matrix.shape[1])]
            numeric = []
            for j, name in enumerate(names):
                edges, expected = _distribution(matrix[:, j])
                numeric.append(NumericInput(name, 0.0, 1.0, edges, expected))
            fitted.nodes[node_type] = NodeEncoder(tuple(numeric), (), encoded=True)
        return fitted

    # -- applying --------------------------------------------------------------------
    def encode(self, node_type: str, snapshot: Snapshot) -> np.ndarray:
        """The feature matrix of ``node_type`` in this preprocessor's columns (float32)."""
        encoder = self.nodes[node_type]
        n = int(snapshot.data[node_type].num_nodes or 0) if node_type in snapshot.data.node_types \
            else 0
        if encoder.encoded:
            return _encoded_columns(snapshot, node_type, [c.name for c in encoder.numeric], n)
        raw = snapshot.raw.get(node_type)
        if raw is None:
            raise InputError(f"snapshot has no raw properties of node type {node_type!r}, which "
                             f"the model reads ({self._origin()}); export it from Neo4j again")
        if not encoder.numeric and not encoder.categorical:
            return np.ones((n, 1), dtype=np.float32)
        width = len(encoder.columns)
        out = np.zeros((n, width), dtype=np.float32)
        for j, num in enumerate(encoder.numeric):
            values = self._column(raw.numeric, node_type, num.name)
            scaled = (np.asarray(values, dtype=np.float64) - num.mean) / num.std
            out[:, j] = np.where(np.isnan(scaled), 0.0, scaled)
        start = len(encoder.numeric)
        for cat in encoder.categorical:
            values = self._column(raw.categorical, node_type, cat.prop)
            out[np.arange(n), start + cat.codes(values)] = 1.0
            start += len(cat.vocabulary) + 1
        return out

    def transform(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with every node type's matrix in the model's columns and scaling.

        The graph itself is shared, not copied; a snapshot already encoded by an equal
        preprocessor is returned as is.
        """
        if snapshot.encoding == self.digest:
            return snapshot
        missing = [nt for nt in self.nodes if nt not in snapshot.data.node_types]
        if missing:
            raise InputError(f"snapshot lacks node types {missing} that the model reads "
                             f"({self._origin()}); check export.nodes")
        self._check_edges(snapshot)
        import torch

        data = copy.copy(snapshot.data)
        for node_type in self.nodes:
            data[node_type].x = torch.from_numpy(self.encode(node_type, snapshot))
        return replace(snapshot, data=data, feature_names=self.feature_names,
                       feature_stats=self.feature_stats, encoding=self.digest)

    def drift(self, snapshot: Snapshot) -> dict[str, float]:
        """Population stability index of every model input against training, by
        ``node_type.input`` (a categorical property counts as one input)."""
        return {f"{node_type}.{spec.label}": population_stability(np.asarray(spec.expected),
                                                                  spec.bin_shares(values))
                for node_type, encoder in self.nodes.items()
                for spec, values in self._inputs(node_type, encoder, snapshot)}

    def _inputs(self, node_type: str, encoder: NodeEncoder, snapshot: Snapshot
                ) -> Iterator[tuple[NumericInput | CategoricalInput, np.ndarray]]:
        """Each input of ``node_type`` with its values in ``snapshot`` (none when the snapshot
        lacks the node type or its raw columns)."""
        if node_type not in snapshot.data.node_types:
            return
        if encoder.encoded:
            n = int(snapshot.data[node_type].num_nodes or 0)
            matrix = _encoded_columns(snapshot, node_type, [c.name for c in encoder.numeric], n)
            for j, num in enumerate(encoder.numeric):
                yield num, matrix[:, j].astype(np.float64)
            return
        raw = snapshot.raw.get(node_type)
        if raw is None:
            return
        for num in encoder.numeric:
            yield num, np.asarray(self._column(raw.numeric, node_type, num.name), np.float64)
        for cat in encoder.categorical:
            yield cat, self._column(raw.categorical, node_type, cat.prop)

    # -- description -----------------------------------------------------------------
    @property
    def feature_names(self) -> dict[str, list[str]]:
        return {nt: enc.columns for nt, enc in self.nodes.items()}

    @property
    def feature_stats(self) -> dict[str, dict[str, list[float]]]:
        return {nt: enc.stats for nt, enc in self.nodes.items()}

    @property
    def digest(self) -> str:
        """Identifies what the preprocessor does (not where it was fitted)."""
        payload = self.to_dict()
        payload.pop("fitted_on")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "fitted_on": self.fitted_on,
            "edge_transforms": dict(sorted(self.edge_transforms.items())),
            "nodes": {nt: {
                "encoded": enc.encoded,
                "numeric": [{"name": n.name, "mean": n.mean, "std": n.std, "edges": list(n.edges),
                             "expected": list(n.expected)} for n in enc.numeric],
                "categorical": [{"prop": c.prop, "vocabulary": list(c.vocabulary),
                                 "expected": list(c.expected)} for c in enc.categorical],
            } for nt, enc in self.nodes.items()},
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Preprocessor:
        if payload.get("format") != FORMAT:
            raise InputError(f"preprocessor format {payload.get('format')!r} is not the "
                             f"supported {FORMAT}; upgrade sybilgnn or retrain")
        nodes = {nt: NodeEncoder(
            tuple(NumericInput(n["name"], float(n["mean"]), float(n["std"]),
                               tuple(n["edges"]), tuple(n["expected"])) for n in enc["numeric"]),
            tuple(CategoricalInput(c["prop"], tuple(c["vocabulary"]), tuple(c["expected"]))
                  for c in enc["categorical"]),
            bool(enc["encoded"])) for nt, enc in payload["nodes"].items()}
        return cls(nodes, dict(payload.get("edge_transforms", {})), payload.get("fitted_on", ""))

    # -- helpers ---------------------------------------------------------------------
    def _origin(self) -> str:
        return f"fitted on snapshot {self.fitted_on[:12]}" if self.fitted_on else "fitted earlier"

    def _column(self, columns: dict[str, np.ndarray], node_type: str, name: str) -> np.ndarray:
        if name not in columns:
            raise InputError(
                f"snapshot: {node_type} property {name!r} is missing, and the model reads it "
                f"({self._origin()}); add it back to export.nodes.{node_type} or retrain")
        return columns[name]

    def _check_edges(self, snapshot: Snapshot) -> None:
        have = _edge_transforms(snapshot)
        for name, transform in self.edge_transforms.items():
            if name in have and have[name] != transform:
                raise InputError(
                    f"export.relationships.{name}.transform is {have[name]!r}, the model was "
                    f"trained on {transform!r} weights; set it back or retrain")


def _vocabulary_sizes(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    """``top_k`` per categorical property from the snapshot's export schema."""
    nodes = snapshot.meta.get("schema", {}).get("nodes", {})
    return {nt: {prop: int(k) for prop, k in desc.get("categorical", {}).items()}
            for nt, desc in nodes.items()}


def _edge_transforms(snapshot: Snapshot) -> dict[str, str]:
    rels = snapshot.meta.get("schema", {}).get("relationships", {})
    return {name: str(desc.get("transform")) for name, desc in rels.items()}


def _encoded_columns(snapshot: Snapshot, node_type: str, names: list[str], n: int) -> np.ndarray:
    """Columns of an already-encoded matrix, by name."""
    x = snapshot.data[node_type].get("x")
    have = list(snapshot.feature_names.get(node_type, []))
    if x is None:
        if names:
            raise InputError(f"snapshot: node type {node_type!r} has no features, the model "
                             f"reads {names}")
        return np.zeros((n, 0), dtype=np.float32)
    matrix = x.detach().cpu().numpy()
    if len(have) != matrix.shape[1]:
        have = [f"x{j}" for j in range(matrix.shape[1])]
    position = {name: j for j, name in enumerate(have)}
    absent = [name for name in names if name not in position]
    if absent:
        raise InputError(f"snapshot: {node_type} features {absent} are missing, and the model "
                         "reads them; export with the model's feature list or retrain")
    return np.ascontiguousarray(matrix[:, [position[name] for name in names]], dtype=np.float32)
