"""The graph schema the export reads (node and relationship types, their features, which node
type carries labels) and the export's own settings: every stage after the export reads the
schema from here, so a graph with other names needs only configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sybilgnn.config._base import _Section

__all__ = ["ExportSettings", "LabelSchema", "NodeSchema", "RelationshipSchema",
           "export_schema_problem"]


class NodeSchema(_Section):
    """One exported node type: its Neo4j label, key property and feature properties."""

    label: str
    key: str
    features: list[str] | None = Field(
        default_factory=list,
        description="numeric properties; None: on the label the features stage writes "
                    "(Account) its sybilgnn.features.ACCOUNT_FEATURES, on any other label the "
                    "f_* properties found on it (never another type's list)")
    categorical: dict[str, int] = Field(
        default_factory=dict, description="property -> top-k values one-hot encoded, plus 'other'")
    fleet_count: str | None = Field(
        default=None,
        description="the (:Fleet) property counting the nodes of this type that two or more "
                    "members share, when a fleet relation links this type to the labelled "
                    "one; null: n_shared_<node type>")


class RelationshipSchema(_Section):
    """One exported relationship type; the edge type name is its key in ``relationships``."""

    type: str
    source: str
    target: str
    weight: str | None = None
    transform: Literal["none", "log1p"] = "none"
    reverse: bool = True


class LabelSchema(_Section):
    """Where training labels, analyst verdicts and groupings live on the labelled node type."""

    node_type: str = "account"
    label: str = "label"
    label_time: str = "label_at"
    review: str = "review"
    review_time: str = "reviewed_at"
    fleet: str | None = "fleet"
    source: str | None = Field(default="label_source",
                               description="property naming where a label came from")
    audit_source: str | None = Field(
        default="audit",
        description="labels whose source is this value come from a random prevalence audit: "
                    "they measure (prevalence, population precision) and are never trained "
                    "on; null: no audit")


def _default_nodes() -> dict[str, NodeSchema]:
    return {
        "account": NodeSchema(label="Account", key="account_id", features=None,
                              categorical={"country": 20, "plan": 4}),
        "ip": NodeSchema(label="IP", key="ip_id", features=["is_datacenter"],
                         categorical={"asn": 20}, fleet_count="n_shared_ips"),
        "payment": NodeSchema(label="PaymentInstrument", key="pm_id", features=["is_prepaid"],
                              categorical={"issuer_country": 20},
                              fleet_count="n_shared_instruments"),
    }


def _default_relationships() -> dict[str, RelationshipSchema]:
    return {
        "used_ip": RelationshipSchema(type="USED_IP", source="account", target="ip",
                                      weight="n_events", transform="log1p"),
        "paid_with": RelationshipSchema(type="PAID_WITH", source="account", target="payment",
                                        weight="n_charges", transform="log1p"),
        "prompt_similar": RelationshipSchema(type="PROMPT_SIMILAR", source="account",
                                             target="account", weight="similarity"),
    }


class ExportSettings(_Section):
    """Neo4j -> Snapshot export; ``nodes``/``relationships`` replace the defaults whole."""

    cache_dir: Path = Path(".sybilgnn/snapshots")
    fetch_size: int = Field(default=100_000, gt=0)
    chunk_size: int = Field(default=200_000, gt=0, description="nodes per columnar read")
    nodes: dict[str, NodeSchema] = Field(default_factory=_default_nodes)
    relationships: dict[str, RelationshipSchema] = Field(default_factory=_default_relationships)
    labels: LabelSchema = LabelSchema()
    fleet_relations: list[str] | None = Field(
        default=None,
        description="names in export.relationships along which flagged nodes of the labelled "
                    "type form fleets: a relation between two labelled nodes links them, one "
                    "to another node type links the labelled nodes that share such a node; "
                    "null: every relationship with the labelled node type at an end")

    @model_validator(mode="after")
    def _relationships_name_node_types(self) -> ExportSettings:
        problem = export_schema_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def export_schema_problem(export: ExportSettings) -> str | None:
    """What is inconsistent in the export schema (names that point nowhere), or None.

    Run at validation and again by ``GraphSchema`` (``model_copy`` skips validation)."""
    for name, rel in export.relationships.items():
        for end in (rel.source, rel.target):
            if end not in export.nodes:
                return (f"export.relationships.{name}: node type {end!r} is not in "
                        f"export.nodes ({sorted(export.nodes)})")
    labelled = export.labels.node_type
    if labelled not in export.nodes:
        return (f"export.labels.node_type {labelled!r} is not in export.nodes "
                f"({sorted(export.nodes)})")
    for name in export.fleet_relations or []:
        fleet_rel = export.relationships.get(name)
        if fleet_rel is None:
            return (f"export.fleet_relations: {name!r} is not in export.relationships "
                    f"({sorted(export.relationships)}); list relationship names from there")
        if labelled not in (fleet_rel.source, fleet_rel.target):
            return (f"export.fleet_relations: {name!r} links {fleet_rel.source!r} to "
                    f"{fleet_rel.target!r}, "
                    f"neither of them the labelled node type {labelled!r} "
                    "(export.labels.node_type); a fleet relation must start or end there")
    return None
