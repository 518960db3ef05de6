"""One promotion at a time per registered model, across machines sharing a registry.

The retrain's file lock (``registry.lock_file``) only keeps two retrains on one box apart.
With a shared tracking server, two retrains on two machines could each compare their
challenger with the same champion and both move the alias: the second would replace a
model it was never compared with. So the gate (and an explicit ``promote --version``) runs
under a lease: a registered model named ``<model>.promotion-lease`` that exists while a
promotion runs. Creating a registered model is the one write MLflow's stores refuse when the
name exists (a unique key in the database, ``RESOURCE_ALREADY_EXISTS`` from a server), so
taking the lease is atomic on SQLite, PostgreSQL and through a tracking server alike.

A second promotion waits for the lease (``registry.promotion_wait_s``) and then reads the
champion afresh, so it compares with whatever the first one left. A lease older than
``registry.lease_stale_s`` belongs to a process that died; it is taken over with a warning.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError
from sybilgnn.registry._tracking import client_for

__all__ = ["PromotionBusyError", "lease_name", "promotion_lease"]

log = logging.getLogger(__name__)

LEASE_SUFFIX = ".promotion-lease"
_POLL_S = 1.0


class PromotionBusyError(SybilgnnError):
    """Another promotion held the registry's lease for longer than this run would wait."""

    exit_code = 3


@dataclass(frozen=True)
class _Holder:
    token: str
    who: str
    since: float  # epoch seconds


def lease_name(settings: Settings) -> str:
    return settings.registry.model_name + LEASE_SUFFIX


def _already_exists(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_ALREADY_EXISTS"


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def _try_take(client: MlflowClient, name: str, me: _Holder, model: str) -> bool:
    try:
        client.create_registered_model(
            name, tags={"token": me.token, "holder": me.who, "since": f"{me.since:.3f}"},
            description=f"sybilgnn: held while a promotion of {model!r} runs; deleted when it "
                        "ends. Delete it by hand only if that process is gone.")
        return True
    except MlflowException as exc:
        if _already_exists(exc):
            return False
        raise


def _current(client: MlflowClient, name: str) -> _Holder | None:
    """The lease's holder, or None when it was released meanwhile."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise
    try:
        since = float(tags.get("since", "0"))
    except ValueError:
        since = 0.0
    return _Holder(tags.get("token", ""), tags.get("holder", "unknown"), since)


def _drop(client: MlflowClient, name: str, token: str) -> None:
    """Delete the lease if ``token`` still holds it (a stale take-over may have replaced it)."""
    holder = _current(client, name)
    if holder is None or holder.token != token:
        return
    try:
        client.delete_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise


def _when(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="seconds")


@contextmanager
def promotion_lease(settings: Settings, *, wait_s: float | None = None) -> Iterator[str]:
    """Hold the registered model's promotion lease for the block; its name.

    Waits up to ``wait_s`` (default ``registry.promotion_wait_s``) for another holder, then
    raises ``PromotionBusyError``; a holder older than ``registry.lease_stale_s`` is replaced.
    """
    reg = settings.registry
    client, _ = client_for(settings)
    name = lease_name(settings)
    token, who = uuid.uuid4().hex, f"pid {os.getpid()} on {socket.gethostname()}"
    deadline = time.monotonic() + (reg.promotion_wait_s if wait_s is None else wait_s)
    announced = False
    while not _try_take(client, name, _Holder(token, who, time.time()), reg.model_name):
        holder = _current(client, name)
        if holder is not None and time.time() - holder.since > reg.lease_stale_s:
            log.warning("taking over the promotion lease %r from %s (held since %s, longer "
                        "than registry.lease_stale_s=%gs: that process is taken to be gone)",
                        name, holder.who, _when(holder.since), reg.lease_stale_s)
            _drop(client, name, holder.token)
            continue
        if time.monotonic() >= deadline:
            held_by = "another process" if holder is None else (
                f"{holder.who} since {_when(holder.since)}")
            raise PromotionBusyError(
                f"another promotion of {reg.model_name!r} holds the registry's lease "
                f"{name!r} ({held_by}); nothing was promoted. Run `sybilgnn promote` once it has "
                f"finished, or raise registry.promotion_wait_s (now {reg.promotion_wait_s:g}s)")
        if not announced and holder is not None:
            log.info("waiting for the promotion lease %r held by %s", name, holder.who)
            announced = True
        time.sleep(_POLL_S)
    try:
        yield name
    finally:
        _drop(client, name, token)
