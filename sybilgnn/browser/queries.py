"""The analysts' saved queries: one source for the Browser guide, the docs and the tests.

Every query is parameterised; the Browser sets the parameters with ``:param`` lines, the
package passes the same names through the driver. Keeping them in one place means the guide,
``docs/analyst-guide.md`` and the tests can never drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SavedQuery",
    "SAVED_QUERIES",
    "VERDICTS",
    "FLEETS_QUERY",
    "FLEET_SUBGRAPH_QUERY",
    "ACCOUNT_EVIDENCE_QUERY",
    "RECORD_VERDICT_QUERY",
    "CHANGES_QUERY",
    "LABEL_CONFLICTS_QUERY",
    "query_by_name",
    "param_line",
]

VERDICTS: tuple[str, ...] = ("confirmed", "false_positive")


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


FLEETS_QUERY = SavedQuery(
    name="fleets",
    title="Active fleets, largest and most suspicious first",
    description=(
        "Lists the fleets the latest scoring run found, newest first, then by size and mean "
        "score. Open one with the next query."
    ),
    cypher="""\
MATCH (f:Fleet)
WHERE f.active = true AND f.size >= $min_size
RETURN f.fleet_id AS fleet_id, f.size AS size, round(f.mean_score, 3) AS mean_score,
       f.n_shared_ips AS shared_ips, f.n_shared_instruments AS shared_instruments,
       f.first_seen AS first_seen, f.last_seen AS last_seen
ORDER BY f.first_seen DESC, f.size DESC, f.mean_score DESC
LIMIT $limit""",
    params={"min_size": 2, "limit": 25},
)

FLEET_SUBGRAPH_QUERY = SavedQuery(
    name="fleet_subgraph",
    title="One fleet's subgraph",
    description=(
        "Draws the fleet, its member accounts, the IPs and payment instruments that two or "
        "more members share, and the prompt-similarity links between members. Red accounts "
        "are flagged; bigger accounts score higher."
    ),
    cypher="""\
MATCH (f:Fleet {fleet_id: $fleet_id})<-[:MEMBER_OF]-(member:Account)
// the highest-scoring members only: a drawing of thousands of accounts helps nobody
WITH f, member ORDER BY member.sybil_score DESC LIMIT $max_members
WITH f, collect(member) AS members
CALL (f, members) {
  UNWIND members AS a
  MATCH p = (a)-[:MEMBER_OF]->(f)
  RETURN p
  UNION
  UNWIND members AS a
  MATCH p = (a)-[:USED_IP|PAID_WITH]->(shared)
  WHERE COUNT { (shared)<-[:USED_IP|PAID_WITH]-(other) WHERE other IN members } >= 2
  RETURN p
  UNION
  UNWIND members AS a
  MATCH p = (a)-[:PROMPT_SIMILAR]->(b)
  WHERE b IN members
  RETURN p
}
RETURN p""",
    params={"fleet_id": "F-0001", "max_members": 200},
)

ACCOUNT_EVIDENCE_QUERY = SavedQuery(
    name="account_evidence",
    title="Why an account was flagged",
    description=(
        "Shows the account's score, the evidence the scoring job wrote (summary, top "
        "features, relations, neighbours), its fleet and any verdict already recorded."
    ),
    cypher="""\
MATCH (a:Account {account_id: $account_id})
OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet)
RETURN a.account_id AS account_id, round(a.sybil_score, 4) AS score, a.sybil_flag AS flagged,
       f.fleet_id AS fleet_id, a.evidence_summary AS summary,
       a.evidence_top_features AS top_features, a.evidence_relations AS relations,
       a.evidence_neighbours AS neighbours, a.model_version AS model_version,
       a.run_id AS run_id, a.review AS review, a.reviewed_by AS reviewed_by,
       a.reviewed_at AS reviewed_at""",
    params={"account_id": "acct-0001"},
)

RECORD_VERDICT_QUERY = SavedQuery(
    name="record_verdict",
    title="Record a verdict",
    description=(
        "Marks the account 'confirmed' (a fake) or 'false_positive'. Anything else is "
        "refused and nothing is written; the next retrain learns from recorded verdicts."
    ),
    cypher="""\
WITH $verdict IN ['confirmed', 'false_positive'] AS valid
OPTIONAL MATCH (a:Account {account_id: $account_id})
FOREACH (_ IN CASE WHEN valid AND a IS NOT NULL THEN [1] ELSE [] END |
  SET a.review = $verdict, a.reviewed_at = datetime(), a.reviewed_by = $analyst,
      a.review_note = $note)
RETURN $account_id AS account_id,
       CASE WHEN a IS NULL THEN 'unknown account'
            WHEN NOT valid THEN 'refused: verdict must be confirmed or false_positive'
            ELSE 'recorded' END AS outcome,
       a.review AS review, a.reviewed_by AS reviewed_by, a.reviewed_at AS reviewed_at""",
    params={"account_id": "acct-0001", "verdict": "confirmed", "analyst": "analyst",
            "note": None},
    writes=True,
)

CHANGES_QUERY = SavedQuery(
    name="changes",
    title="What changed since the previous scoring run",
    description=(
        "Compares a scoring run (null: the latest) with the one before: fleets that "
        "appeared or disappeared, and accounts newly flagged or no longer flagged (counted "
        "for the latest run, from prev_sybil_flag)."
    ),
    cypher="""\
MATCH (cur:ScoringRun)
WHERE $run_id IS NULL OR cur.run_id = $run_id
WITH cur ORDER BY cur.started_at DESC LIMIT 1
OPTIONAL MATCH (prev:ScoringRun) WHERE prev.started_at.epochMillis < cur.started_at.epochMillis
WITH cur, prev ORDER BY prev.started_at DESC LIMIT 1
CALL (cur, prev) {
  OPTIONAL MATCH (f:Fleet)
  WHERE f.first_seen.epochMillis >= cur.started_at.epochMillis
  RETURN collect(f.fleet_id) AS new_fleets
}
CALL (cur, prev) {
  OPTIONAL MATCH (f:Fleet)
  WHERE f.active = false AND f.last_seen.epochMillis < cur.started_at.epochMillis
    AND (prev IS NULL OR f.last_seen.epochMillis >= prev.started_at.epochMillis)
  RETURN collect(f.fleet_id) AS gone_fleets
}
CALL (cur) {
  OPTIONAL MATCH (a:Account {run_id: cur.run_id})
  RETURN count(CASE WHEN a.sybil_flag AND NOT coalesce(a.prev_sybil_flag, false)
                    THEN 1 END) AS newly_flagged,
         count(CASE WHEN NOT a.sybil_flag AND coalesce(a.prev_sybil_flag, false)
                    THEN 1 END) AS unflagged,
         count(a.prev_sybil_flag) AS with_previous_flag
}
RETURN cur.run_id AS run_id, prev.run_id AS previous_run_id, new_fleets, gone_fleets,
       newly_flagged, unflagged, with_previous_flag""",
    params={"run_id": None},
)

LABEL_CONFLICTS_QUERY = SavedQuery(
    name="label_conflicts",
    title="Scores that contradict a label",
    description=(
        "Accounts a label or a verdict says are legitimate but the model scores above the "
        "threshold. They are not flagged and join no fleet (the label wins); review them "
        "when the label itself may be wrong."
    ),
    cypher="""\
MATCH (a:Account {label_conflict: true})
RETURN a.account_id AS account_id, round(a.sybil_score, 4) AS score, a.label AS label,
       a.label_source AS label_source, a.review AS review, a.reviewed_at AS reviewed_at,
       a.model_version AS model_version
ORDER BY score DESC, account_id LIMIT $limit""",
    params={"limit": 100},
)

SAVED_QUERIES: tuple[SavedQuery, ...] = (
    FLEETS_QUERY,
    FLEET_SUBGRAPH_QUERY,
    ACCOUNT_EVIDENCE_QUERY,
    RECORD_VERDICT_QUERY,
    CHANGES_QUERY,
    LABEL_CONFLICTS_QUERY,
)


def query_by_name(name: str) -> SavedQuery:
    for query in SAVED_QUERIES:
        if query.name == name:
            return query
    known = ", ".join(q.name for q in SAVED_QUERIES)
    raise KeyError(f"no saved query {name!r}; known: {known}")
