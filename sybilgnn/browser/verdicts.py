"""Analyst verdicts on flagged accounts, written where the next export reads them.

The write is the same Cypher the Browser guide offers (``RECORD_VERDICT_QUERY``), so the
command line and the Browser validate verdicts identically.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from sybilgnn.browser.queries import RECORD_VERDICT_QUERY, VERDICTS
from sybilgnn.errors import InputError

__all__ = ["Verdict", "record_verdict", "default_analyst"]


@dataclass(frozen=True)
class Verdict:
    account_id: str
    review: str
    reviewed_by: str
    reviewed_at: str
    note: str | None


def default_analyst() -> str:
    """The operating-system user, so every verdict names who gave it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_verdict(driver: Any, account_id: str, verdict: str, analyst: str | None = None,
                   *, note: str | None = None, database: str | None = None) -> Verdict:
    """Set ``review``, ``reviewed_at``, ``reviewed_by`` (and ``review_note``) on one account.

    Raises ``InputError`` for a verdict other than 'confirmed'/'false_positive' or an
    account id that is not in the graph; nothing is written then.
    """
    verdict = verdict.strip().lower() if isinstance(verdict, str) else verdict
    if verdict not in VERDICTS:
        raise InputError(f"verdict {verdict!r} for account {account_id!r}: expected one of "
                         f"{', '.join(VERDICTS)}")
    if not account_id:
        raise InputError("account id is empty: give the account_id shown in the Browser")
    params = {"account_id": account_id, "verdict": verdict,
              "analyst": analyst or default_analyst(), "note": note}

    def work(tx: Any) -> Any:
        return tx.run(RECORD_VERDICT_QUERY.cypher, params).single()

    with driver.session(database=database) as session:
        record = session.execute_write(work)
    if record is None or record["outcome"] == "unknown account":
        raise InputError(f"account {account_id!r} is not in the graph; check the id (the "
                         "account evidence query in the Browser guide shows it)")
    if record["outcome"] != "recorded":
        raise InputError(f"verdict for {account_id!r} refused: {record['outcome']}")
    reviewed_at = record["reviewed_at"]
    return Verdict(account_id=account_id, review=record["review"],
                   reviewed_by=record["reviewed_by"],
                   reviewed_at=reviewed_at.iso_format() if hasattr(reviewed_at, "iso_format")
                   else str(reviewed_at), note=note)
