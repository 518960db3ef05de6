"""Check the export schema of the config against the database before any name reaches Cypher.

Labels, relationship types and property keys are looked up with ``db.labels()``,
``db.relationshipTypes()`` and ``db.propertyKeys()``; a name the database does not know is a
clear error that says which config key to change. Optional properties (labels, verdicts,
groupings) may be absent: a young graph has no labels yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sybilgnn.config import ExportSettings, LabelSchema, NodeSchema, RelationshipSchema
from sybilgnn.neo4j.cypher import SchemaError, quote

__all__ = ["ResolvedNode", "ResolvedSchema", "resolve_schema",
           "default_account_features", "computed_features"]

FEATURE_PREFIX = "f_"
_DISCOVERY_SAMPLE = 10_000


@dataclass(frozen=True)
class ResolvedNode:
    name: str
    label: str
    key: str
    features: list[str]
    categorical: dict[str, int]


@dataclass(frozen=True)
class ResolvedSchema:
    nodes: dict[str, ResolvedNode]
    relationships: dict[str, RelationshipSchema]
    labels: LabelSchema
    present_label_properties: frozenset[str]
    holdout_property: str | None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, part of the fingerprint and content hash."""
        return {
            "nodes": {n: {"label": r.label, "key": r.key, "features": r.features,
                          "categorical": r.categorical} for n, r in sorted(self.nodes.items())},
            "relationships": {n: r.model_dump() for n, r in sorted(self.relationships.items())},
            "labels": self.labels.model_dump(),
            "holdout_property": self.holdout_property,
        }


def default_account_features() -> list[str] | None:
    """The feature list of the features stage, or None while that stage is not installed."""
    try:
        from sybilgnn import features
    except ImportError:
        return None
    names = getattr(features, "ACCOUNT_FEATURES", None)
    return list(names) if names is not None else None


def computed_features(label: str) -> list[str] | None:
    """The features stage's list for nodes of ``label``: only the label it computes them for
    (accounts) has them; None for any other label, or while that stage is not installed."""
    try:
        from sybilgnn import features
    except ImportError:
        return None
    if label != getattr(features, "ACCOUNT_FEATURES_LABEL", None):
        return None
    return default_account_features()


def _names(tx: Any, procedure: str, column: str) -> set[str]:
    return {str(r[column]) for r in tx.run(f"CALL {procedure}() YIELD {column} RETURN {column}")}


def _discover_features(tx: Any, label: str) -> list[str]:
    """``f_*`` keys found on a sample of nodes, when no explicit feature list exists."""
    query = (f"MATCH (n:{quote(label)}) WITH n LIMIT $sample UNWIND keys(n) AS k "
             "WITH DISTINCT k WHERE k STARTS WITH $prefix RETURN k ORDER BY k")
    return [r["k"] for r in tx.run(query, sample=_DISCOVERY_SAMPLE, prefix=FEATURE_PREFIX)]


def _resolve_node(tx: Any, name: str, node: NodeSchema, labels: set[str],
                  keys: set[str], notes: list[str]) -> ResolvedNode:
    where = f"export.nodes.{name}"
    if node.label not in labels:
        raise SchemaError(f"{where}.label: label {node.label!r} is not in the graph "
                          f"(labels present: {sorted(labels)}); fix the schema or ingest first")
    features = node.features
    if features is None:  # never another type's list: a custom type gets its own f_* only
        features = computed_features(node.label)
        if features is None:
            features = _discover_features(tx, node.label)
            notes.append(f"{where}.features: discovered {len(features)} f_* properties")
    for prop in [node.key, *features, *node.categorical]:
        quote(prop)
        if prop not in keys:
            raise SchemaError(f"{where}: property {prop!r} is not a property key of the graph "
                              f"(db.propertyKeys()); remove it from the schema or fix the name")
    overlap = set(features) & set(node.categorical)
    if overlap:
        raise SchemaError(f"{where}: {sorted(overlap)} listed as numeric and categorical")
    return ResolvedNode(name, node.label, node.key, list(features), dict(node.categorical))


def resolve_schema(tx: Any, export: ExportSettings,
                   holdout_property: str | None) -> ResolvedSchema:
    """Validate every configured name against the database; raises SchemaError."""
    labels = _names(tx, "db.labels", "label")
    rel_types = _names(tx, "db.relationshipTypes", "relationshipType")
    keys = _names(tx, "db.propertyKeys", "propertyKey")
    notes: list[str] = []
    nodes = {}
    for name, node in export.nodes.items():
        quote(name)
        quote(node.label)
        nodes[name] = _resolve_node(tx, name, node, labels, keys, notes)
    for name, rel in export.relationships.items():
        quote(name)
        quote(rel.type)
        if rel.type not in rel_types:
            raise SchemaError(
                f"export.relationships.{name}.type: relationship type {rel.type!r} is not in "
                f"the graph (types present: {sorted(rel_types)}); fix the schema or ingest first")
        if rel.weight is not None:
            quote(rel.weight)
            if rel.weight not in keys:
                raise SchemaError(f"export.relationships.{name}.weight: property "
                                  f"{rel.weight!r} is not a property key of the graph")
    label_schema = export.labels
    optional = [label_schema.label, label_schema.label_time, label_schema.review,
                label_schema.review_time]
    if label_schema.fleet:
        optional.append(label_schema.fleet)
    if label_schema.source and label_schema.audit_source:
        optional.append(label_schema.source)
    if holdout_property:
        optional.append(holdout_property)
    for prop in optional:
        quote(prop)
    present = frozenset(p for p in optional if p in keys)
    for prop in sorted(set(optional) - present):
        notes.append(f"property {prop!r} is not in the graph yet: treated as missing everywhere")
    return ResolvedSchema(nodes, dict(export.relationships), label_schema, present,
                          holdout_property, notes)
