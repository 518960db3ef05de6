"""The graph's schema as every stage after the export reads it.

The export is driven by ``export.nodes``, ``export.relationships`` and ``export.labels``.
Training, evaluation, the registry, scoring, fleets, evidence, write-back, the replay and the
report read the same names through one ``GraphSchema`` built from those settings: which node
type carries the labels (and so is scored, flagged and grouped into fleets), its Neo4j label
and key, the edge types of the exported ``HeteroData`` and the relationships that define
fleets (``export.fleet_relations``). A platform whose graph differs from the default one
(another node type for devices, a co-worker graph, a renamed relationship) changes only
configuration; the default names live in ``sybilgnn.config`` alone.

It lives beside ``sybilgnn.config``, not in one stage's subpackage, because it is a view of
the configuration that the Neo4j side (export, write-back) and the model side (training,
scoring) share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sybilgnn.config import ConfigError, ExportSettings, LabelSchema, Settings, \
    export_schema_problem

if TYPE_CHECKING:
    from sybilgnn.data.snapshot import Snapshot

__all__ = ["DEFAULT_LABELLED_TYPE", "EdgeType", "FleetHub", "GraphSchema", "NodeType",
           "Relation", "labelled_node_type"]

EdgeType = tuple[str, str, str]

#: The labelled node type of the default configuration: what models saved before they
#: recorded their own labelled node type were trained on.
DEFAULT_LABELLED_TYPE: str = LabelSchema().node_type
REVERSE_PREFIX = "rev_"


@dataclass(frozen=True)
class NodeType:
    """One exported node type: its name in ``HeteroData``, its Neo4j label and key."""

    name: str
    label: str
    key: str
    fleet_count: str  # the (:Fleet) property counting shared nodes of this type

    @property
    def id_prefix(self) -> str:
        """How evidence names a node of this type: its key without ``_id`` (``ip:…``)."""
        return self.key.removesuffix("_id")


@dataclass(frozen=True)
class Relation:
    """One exported relationship type, named as its key in ``export.relationships``."""

    name: str
    type: str  # the Neo4j relationship type
    source: str
    target: str
    reverse: bool

    @property
    def edge_type(self) -> EdgeType:
        """The forward edge type of the exported ``HeteroData``."""
        return (self.source, self.name, self.target)

    @property
    def reverse_edge_type(self) -> EdgeType | None:
        """``(target, rev_<name>, source)``, or None when the export adds no reverse type (a
        relationship within one node type stores both directions in its own edge type)."""
        if not self.reverse or self.source == self.target:
            return None
        return (self.target, f"{REVERSE_PREFIX}{self.name}", self.source)


@dataclass(frozen=True)
class FleetHub:
    """A fleet relation to another node type: labelled nodes that share one of its nodes
    (an IP, a card, a device) are linked. ``labelled_end`` is the row of ``edge_type``'s
    ``edge_index`` that holds the labelled nodes (0: source, 1: target)."""

    relation: Relation
    hub: NodeType
    labelled_end: int

    @property
    def edge_type(self) -> EdgeType:
        return self.relation.edge_type


@dataclass(frozen=True)
class GraphSchema:
    """Node types, relationship types, the labelled node type (with the properties its labels
    and verdicts live in) and the fleet relations."""

    nodes: Mapping[str, NodeType]
    relations: Mapping[str, Relation]
    labelled: str
    fleet_relations: tuple[str, ...]
    #: Where labels, their source and analyst verdicts live on the labelled nodes.
    labels: LabelSchema = field(default_factory=LabelSchema)

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphSchema:
        return cls.from_export(settings.export)

    @classmethod
    def from_export(cls, export: ExportSettings) -> GraphSchema:
        """Checked again here: settings changed with ``model_copy`` skip validation."""
        problem = export_schema_problem(export)
        if problem:
            raise ConfigError(problem)
        nodes = {name: NodeType(name, node.label, node.key,
                                node.fleet_count or f"n_shared_{name}")
                 for name, node in export.nodes.items()}
        relations = {name: Relation(name, rel.type, rel.source, rel.target, rel.reverse)
                     for name, rel in export.relationships.items()}
        labelled = export.labels.node_type
        fleet = (tuple(export.fleet_relations) if export.fleet_relations is not None else
                 tuple(n for n, r in relations.items() if labelled in (r.source, r.target)))
        return cls(nodes, relations, labelled, fleet, export.labels)

    @classmethod
    def default(cls) -> GraphSchema:
        """The schema of the default configuration (the simulated platform's graph)."""
        return cls.from_export(ExportSettings())

    @property
    def labelled_node(self) -> NodeType:
        return self.nodes[self.labelled]

    @property
    def id_map_schema(self) -> dict[str, str]:
        """Node type -> the key property whose values the snapshot's id map holds."""
        return {name: node.key for name, node in self.nodes.items()}

    def messages_to_labelled(self) -> dict[EdgeType, str]:
        """Edge types whose messages arrive at labelled nodes, each named by its Neo4j
        relationship type, in configuration order (the evidence's relation names)."""
        out: dict[EdgeType, str] = {}
        for rel in self.relations.values():
            if rel.target == self.labelled:
                out[rel.edge_type] = rel.type
            elif rel.source == self.labelled and rel.reverse_edge_type is not None:
                out[rel.reverse_edge_type] = rel.type
        return out

    def fleet_hubs(self) -> list[FleetHub]:
        """Fleet relations to other node types, in ``fleet_relations`` order."""
        hubs = []
        for name in self.fleet_relations:
            rel = self.relations[name]
            if rel.source == rel.target:
                continue
            labelled_end = 0 if rel.source == self.labelled else 1
            hub = rel.target if labelled_end == 0 else rel.source
            hubs.append(FleetHub(rel, self.nodes[hub], labelled_end))
        return hubs

    def fleet_links(self) -> list[EdgeType]:
        """Edge types of fleet relations between two labelled nodes (direct links)."""
        return [self.relations[name].edge_type for name in self.fleet_relations
                if self.relations[name].source == self.relations[name].target == self.labelled]

    def check_snapshot(self, snapshot: Snapshot, *, what: str = "the snapshot") -> None:
        """A clear error when ``snapshot`` was not exported with this labelled node type."""
        from sybilgnn.errors import InputError

        found = labelled_node_type(snapshot)
        if found != self.labelled:
            raise InputError(
                f"{what} carries its labels on node type {found!r}, but "
                f"export.labels.node_type is {self.labelled!r}; export it again with this "
                "configuration, or use the configuration it was exported with")


def labelled_node_type(snapshot: Snapshot) -> str:
    """The node type a snapshot carries its labels on.

    The export records it with the schema it read (``meta['schema']['labels']``); a snapshot
    built in code names the one node type that has labels ``y`` (none: the default type,
    as in unlabelled test worlds of the default schema).
    """
    from sybilgnn.errors import InputError

    recorded = ((snapshot.meta.get("schema") or {}).get("labels") or {}).get("node_type")
    if recorded:
        return str(recorded)
    carriers = [nt for nt in snapshot.data.node_types if "y" in snapshot.data[nt]]
    if len(carriers) == 1:
        return str(carriers[0])
    if not carriers and DEFAULT_LABELLED_TYPE in snapshot.data.node_types:
        return DEFAULT_LABELLED_TYPE
    raise InputError(f"the snapshot does not say which node type carries its labels "
                     f"(node types with labels y: {carriers}); export it with sybilgnn")
