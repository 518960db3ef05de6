"""The analysts' saved queries: one source for the Browser guide, the docs and the tests.

Every query is parameterised; the Browser sets the parameters with ``:param`` lines, the
package passes the same names through the driver. Keeping them in one place means the guide,
``docs/analyst-guide.md`` and the tests can never drift apart.

The queries follow the graph schema (``GraphSchema``): the labelled node type's Neo4j label
and key (its key is also the parameter that names one node), the properties its labels and
verdicts live in, the fleet relations and the fleets' shared-node counts. Configured names
reach the Cypher text only through ``sybilgnn.neo4j.cypher.quote``; the names the scoring
job itself writes (``:Fleet``, ``MEMBER_OF``, ``sybil_score``, ...) are fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sybilgnn.graph_schema import GraphSchema, NodeType
from sybilgnn.neo4j.cypher import quote

__all__ = [
    "SavedQuery",
    "VERDICTS",
    "MAX_MEMBERS",
    "saved_queries",
    "fleets_query",
    "fleet_subgraph_query",
    "evidence_query",
    "record_verdict_query",
    "changes_query",
    "label_conflicts_query",
    "query_by_name",
    "param_line",
]

VERDICTS: tuple[str, ...] = ("confirmed", "false_positive")
#: Members a fleet drawing shows at most (the highest-scoring ones), in the guide and report.
MAX_MEMBERS = 200


@dataclass(frozen=True)
class SavedQuery:
    """A named Cypher query with example parameter values for the ``:param`` lines."""

    name: str
    title: str
    description: str
    cypher: str
    params: dict[str, Any] = field(default_factory=dict)
    writes: bool = False

    def param_lines(self, values: dict[str, Any] | None = None) -> list[str]:
        """``:param`` lines for the Browser, with ``values`` overriding the examples."""
        merged = {**self.params, **(values or {})}
        return [param_line(key, merged[key]) for key in self.params]


def param_line(key: str, value: Any) -> str:
    """One Browser ``:param`` line; JSON literals are valid Cypher literals for these types."""
    if not key.isidentifier():
        raise ValueError(f"parameter name {key!r} is not a plain identifier")
    return f":param {key} => {json.dumps(value)}"


@dataclass(frozen=True)
class _Names:
    """The labelled node type's names, checked and quoted for Cypher text."""

    node: NodeType
    label: str       # quoted Neo4j label
    key: str         # quoted key property
    param: str       # the parameter naming one node: the key (checked, unquoted)
    example: str     # an example key value for the ``:param`` line
    noun: str        # how the prose names one node ("account")
    review: str      # quoted property of the analyst verdict
    reviewed_at: str  # quoted property of the verdict's time

    @property
    def plural(self) -> str:
        return f"{self.noun}s"

    @property
    def a_noun(self) -> str:
        return f"{'an' if self.noun[:1] in 'aeiou' else 'a'} {self.noun}"


def _names(schema: GraphSchema) -> _Names:
    node = schema.labelled_node
    key = quote(node.key)  # checks the key: it is also the parameter's name
    default = GraphSchema.default().labelled_node
    return _Names(node=node, label=quote(node.label), key=key, param=node.key,
                  example="acct-0001" if node == default else f"{node.id_prefix}-0001",
                  noun=node.name.replace("_", " "), review=quote(schema.labels.review),
                  reviewed_at=quote(schema.labels.review_time))


def _shared_column(fleet_count: str) -> str:
    """The fleets query's column of a shared-node count: ``n_shared_ips`` -> ``shared_ips``."""
    return fleet_count.removeprefix("n_")


def fleets_query(schema: GraphSchema) -> SavedQuery:
    """Active fleets with the shared-node count of each fleet hub (``FleetHub.hub``)."""
    shared = ", ".join(f"f.{quote(hub.hub.fleet_count)} AS "
                       f"{quote(_shared_column(hub.hub.fleet_count))}"
                       for hub in schema.fleet_hubs())
    shared_line = f"       {shared},\n" if shared else ""
    return SavedQuery(
        name="fleets",
        title="Active fleets, largest and most suspicious first",
        description=(
            "Lists the fleets the latest scoring run found, newest first, then by size and "
            "mean score. Open one with the next query."
        ),
        cypher=(
            "MATCH (f:Fleet)\n"
            "WHERE f.active = true AND f.size >= $min_size\n"
            "RETURN f.fleet_id AS fleet_id, f.size AS size, "
            "round(f.mean_score, 3) AS mean_score,\n"
            f"{shared_line}"
            "       f.first_seen AS first_seen, f.last_seen AS last_seen\n"
            "ORDER BY f.first_seen DESC, f.size DESC, f.mean_score DESC\n"
            "LIMIT $limit"),
        params={"min_size": 2, "limit": 25},
    )


def _fleet_branches(schema: GraphSchema) -> list[str]:
    """The UNION branches of the fleet drawing after the ``MEMBER_OF`` one: nodes of fleet
    hubs that two or more members reach along the same direction, then direct links."""
    by_direction: dict[int, list[str]] = {}
    for hub in schema.fleet_hubs():
        by_direction.setdefault(hub.labelled_end, []).append(quote(hub.relation.type))
    branches = []
    for labelled_end, types in by_direction.items():
        rel = ":" + "|".join(types)
        out, back = ((f"-[{rel}]->", f"<-[{rel}]-") if labelled_end == 0 else
                     (f"<-[{rel}]-", f"-[{rel}]->"))
        branches.append(
            f"  UNWIND members AS a\n  MATCH p = (a){out}(shared)\n"
            f"  WHERE COUNT {{ (shared){back}(other) WHERE other IN members }} >= 2\n"
            "  RETURN p")
    for _, name, _ in schema.fleet_links():
        rel = quote(schema.relations[name].type)
        branches.append(f"  UNWIND members AS a\n  MATCH p = (a)-[:{rel}]->(b)\n"
                        "  WHERE b IN members\n  RETURN p")
    return branches


def fleet_subgraph_query(schema: GraphSchema) -> SavedQuery:
    """One fleet's members, the hub nodes two or more of them share along the fleet
    relations, and the direct fleet links between members (the report draws the same)."""
    names = _names(schema)
    member_of = "  UNWIND members AS a\n  MATCH p = (a)-[:MEMBER_OF]->(f)\n  RETURN p"
    union = "\n  UNION\n".join([member_of, *_fleet_branches(schema)])
    hubs = [hub.hub.label for hub in schema.fleet_hubs()]
    links = [schema.relations[name].type for _, name, _ in schema.fleet_links()]
    shared = (f", the {' and '.join(f':{h}' for h in hubs)} nodes that two or more members "
              "share" if hubs else "")
    linked = (f", and the {' and '.join(f':{t}' for t in links)} links between members"
              if links else "")
    return SavedQuery(
        name="fleet_subgraph",
        title="One fleet's subgraph",
        description=(
            f"Draws the fleet, its member {names.plural}{shared}{linked}. Red "
            f"{names.plural} are flagged; bigger {names.plural} score higher."
        ),
        cypher=(
            f"MATCH (f:Fleet {{fleet_id: $fleet_id}})<-[:MEMBER_OF]-(member:{names.label})\n"
            f"// the highest-scoring members only: a drawing of thousands of {names.plural} "
            "helps nobody\n"
            "WITH f, member ORDER BY member.sybil_score DESC LIMIT $max_members\n"
            "WITH f, collect(member) AS members\n"
            f"CALL (f, members) {{\n{union}\n}}\n"
            "RETURN p"),
        params={"fleet_id": "F-0001", "max_members": MAX_MEMBERS},
    )


def evidence_query(schema: GraphSchema) -> SavedQuery:
    """One labelled node's score, evidence, fleet and verdict, by its key."""
    n = _names(schema)
    return SavedQuery(
        name="account_evidence",
        title=f"Why {n.a_noun} was flagged",
        description=(
            f"Shows the {n.noun}'s score, the evidence the scoring job wrote (summary, top "
            "features, relations, neighbours), its fleet and any verdict already recorded."
        ),
        cypher=(
            f"MATCH (a:{n.label} {{{n.key}: ${n.param}}})\n"
            "OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet)\n"
            f"RETURN a.{n.key} AS {n.key}, round(a.sybil_score, 4) AS score,\n"
            "       a.sybil_flag AS flagged, f.fleet_id AS fleet_id,\n"
            "       a.evidence_summary AS summary, a.evidence_top_features AS top_features,\n"
            "       a.evidence_relations AS relations, a.evidence_neighbours AS neighbours,\n"
            "       a.model_version AS model_version, a.run_id AS run_id,\n"
            f"       a.{n.review} AS review, a.reviewed_by AS reviewed_by,\n"
            f"       a.{n.reviewed_at} AS reviewed_at"),
        params={n.param: n.example},
    )


def record_verdict_query(schema: GraphSchema) -> SavedQuery:
    """Write a verdict on one labelled node, by its key; what ``record_verdict`` runs."""
    n = _names(schema)
    return SavedQuery(
        name="record_verdict",
        title="Record a verdict",
        description=(
            f"Marks the {n.noun} 'confirmed' (a fake) or 'false_positive'. Anything else is "
            "refused and nothing is written; the next retrain learns from recorded verdicts."
        ),
        cypher=(
            "WITH $verdict IN ['confirmed', 'false_positive'] AS valid\n"
            f"OPTIONAL MATCH (a:{n.label} {{{n.key}: ${n.param}}})\n"
            "FOREACH (_ IN CASE WHEN valid AND a IS NOT NULL THEN [1] ELSE [] END |\n"
            f"  SET a.{n.review} = $verdict, a.{n.reviewed_at} = datetime(),\n"
            "      a.reviewed_by = $analyst, a.review_note = $note)\n"
            f"RETURN ${n.param} AS {n.key},\n"
            # the label is a checked identifier: safe inside a string literal
            f"       CASE WHEN a IS NULL THEN 'unknown {n.node.label}'\n"
            "            WHEN NOT valid THEN 'refused: verdict must be confirmed or "
            "false_positive'\n"
            "            ELSE 'recorded' END AS outcome,\n"
            f"       a.{n.review} AS review, a.reviewed_by AS reviewed_by,\n"
            f"       a.{n.reviewed_at} AS reviewed_at"),
        params={n.param: n.example, "verdict": "confirmed", "analyst": "analyst",
                "note": None},
        writes=True,
    )


def changes_query(schema: GraphSchema) -> SavedQuery:
    """Fleets that appeared or disappeared and labelled nodes newly (un)flagged by a run."""
    n = _names(schema)
    return SavedQuery(
        name="changes",
        title="What changed since the previous scoring run",
        description=(
            "Compares a scoring run (null: the latest) with the one before: fleets that "
            f"appeared or disappeared, and {n.plural} newly flagged or no longer flagged "
            "(counted for the latest run, from prev_sybil_flag)."
        ),
        cypher=f"""\
MATCH (cur:ScoringRun)
WHERE $run_id IS NULL OR cur.run_id = $run_id
WITH cur ORDER BY cur.started_at DESC LIMIT 1
OPTIONAL MATCH (prev:ScoringRun) WHERE prev.started_at.epochMillis < cur.started_at.epochMillis
WITH cur, prev ORDER BY prev.started_at DESC LIMIT 1
CALL (cur, prev) {{
  OPTIONAL MATCH (f:Fleet)
  WHERE f.first_seen.epochMillis >= cur.started_at.epochMillis
  RETURN collect(f.fleet_id) AS new_fleets
}}
CALL (cur, prev) {{
  OPTIONAL MATCH (f:Fleet)
  WHERE f.active = false AND f.last_seen.epochMillis < cur.started_at.epochMillis
    AND (prev IS NULL OR f.last_seen.epochMillis >= prev.started_at.epochMillis)
  RETURN collect(f.fleet_id) AS gone_fleets
}}
CALL (cur) {{
  OPTIONAL MATCH (a:{n.label} {{run_id: cur.run_id}})
  RETURN count(CASE WHEN a.sybil_flag AND NOT coalesce(a.prev_sybil_flag, false)
                    THEN 1 END) AS newly_flagged,
         count(CASE WHEN NOT a.sybil_flag AND coalesce(a.prev_sybil_flag, false)
                    THEN 1 END) AS unflagged,
         count(a.prev_sybil_flag) AS with_previous_flag
}}
RETURN cur.run_id AS run_id, prev.run_id AS previous_run_id, new_fleets, gone_fleets,
       newly_flagged, unflagged, with_previous_flag""",
        params={"run_id": None},
    )


def label_conflicts_query(schema: GraphSchema) -> SavedQuery:
    """Labelled nodes scored above the threshold that a label or verdict calls legitimate."""
    n = _names(schema)
    source = (f"a.{quote(schema.labels.source)}" if schema.labels.source else "null")
    return SavedQuery(
        name="label_conflicts",
        title="Scores that contradict a label",
        description=(
            f"{n.plural.capitalize()} a label or a verdict says are legitimate but the model "
            "scores above the threshold. They are not flagged and join no fleet (the label "
            "wins); review them when the label itself may be wrong."
        ),
        cypher=(
            f"MATCH (a:{n.label} {{label_conflict: true}})\n"
            f"RETURN a.{n.key} AS {n.key}, round(a.sybil_score, 4) AS score,\n"
            f"       a.{quote(schema.labels.label)} AS label, {source} AS label_source,\n"
            f"       a.{n.review} AS review, a.{n.reviewed_at} AS reviewed_at,\n"
            "       a.model_version AS model_version\n"
            f"ORDER BY score DESC, {n.key} LIMIT $limit"),
        params={"limit": 100},
    )


def saved_queries(schema: GraphSchema) -> tuple[SavedQuery, ...]:
    """The guide's queries for ``schema``, in the order an analyst uses them."""
    return (fleets_query(schema), fleet_subgraph_query(schema), evidence_query(schema),
            record_verdict_query(schema), changes_query(schema), label_conflicts_query(schema))


def query_by_name(name: str, schema: GraphSchema) -> SavedQuery:
    queries = saved_queries(schema)
    for query in queries:
        if query.name == name:
            return query
    known = ", ".join(q.name for q in queries)
    raise KeyError(f"no saved query {name!r}; known: {known}")
