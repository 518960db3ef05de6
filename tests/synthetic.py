"""Small planted-fleet snapshots for tests and benchmarks (no Neo4j needed).

Legitimate accounts use one to a few IPs from a pool with popular (NAT-like) addresses,
mostly their own card, and a few similar prompts to strangers. Each fleet rents a handful
of proxy IPs (partly datacenter, also used by some legitimate accounts), rotates a few
(often prepaid) cards and sends templated prompts, so its members are similar to each
other. One by one, fake accounts differ from legitimate ones only by a small feature
shift. The layout is exactly the export's ``Snapshot`` (docs/architecture.md section 3).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch_geometric.data import HeteroData

from sybilgnn.data.snapshot import ACCOUNT, IP, PAYMENT, Snapshot

__all__ = ["planted_snapshot", "EDGE_TYPES", "append_fleet"]

EDGE_TYPES = [
    (ACCOUNT, "used_ip", IP), (IP, "rev_used_ip", ACCOUNT),
    (ACCOUNT, "paid_with", PAYMENT), (PAYMENT, "rev_paid_with", ACCOUNT),
    (ACCOUNT, "prompt_similar", ACCOUNT),
]


class _Builder:
    """Accumulates nodes and edges, then emits a Snapshot."""

    def __init__(self, rng: np.random.Generator, n_features: int, shift: float) -> None:
        self.rng, self.n_features, self.shift = rng, n_features, shift
        self.acc_x: list[np.ndarray] = []
        self.fake: list[np.ndarray] = []
        self.fleet: list[np.ndarray] = []
        self.campaign: list[np.ndarray] = []
        self.ip_x: list[np.ndarray] = []
        self.pay_x: list[np.ndarray] = []
        self.edges: dict[str, list[np.ndarray]] = {"ip": [], "pay": [], "sim": []}
        self.n_acc = self.n_ip = self.n_pay = 0

    def accounts(self, n: int, *, fleet: int = -1, campaign: int = -1) -> np.ndarray:
        x = self.rng.normal(size=(n, self.n_features))
        if fleet >= 0:
            x[:, :2] += self.shift
        self.acc_x.append(x)
        self.fake.append(np.full(n, fleet >= 0))
        self.fleet.append(np.full(n, fleet))
        self.campaign.append(np.full(n, campaign))
        ids = np.arange(self.n_acc, self.n_acc + n)
        self.n_acc += n
        return ids

    def ips(self, n: int, datacenter_p: float) -> np.ndarray:
        dc = self.rng.random(n) < datacenter_p
        self.ip_x.append(np.stack([dc.astype(float), self.rng.normal(size=n)], 1))
        ids = np.arange(self.n_ip, self.n_ip + n)
        self.n_ip += n
        return ids

    def cards(self, n: int, prepaid_p: float) -> np.ndarray:
        self.pay_x.append((self.rng.random((n, 1)) < prepaid_p).astype(float))
        ids = np.arange(self.n_pay, self.n_pay + n)
        self.n_pay += n
        return ids

    def link(self, kind: str, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> None:
        self.edges[kind].append(np.stack([src, dst, weight], 1))

    def legit_block(self, accounts: np.ndarray, ip_pool: np.ndarray, team_cards: np.ndarray) -> None:
        rng = self.rng
        k = 1 + rng.poisson(1.0, size=len(accounts))
        owner = np.repeat(accounts, k)
        popularity = 1.0 / (np.arange(len(ip_pool)) + 1.0) ** 0.7
        ip = rng.choice(ip_pool, size=len(owner), p=popularity / popularity.sum())
        self.link("ip", owner, ip, np.log1p(1 + rng.poisson(5, len(owner))))
        own = rng.random(len(accounts)) < 0.9
        cards = self.cards(int(own.sum()), 0.08)
        self.link("pay", accounts[own], cards, np.log1p(1 + rng.poisson(3, len(cards))))
        shared = accounts[~own]
        self.link("pay", shared, rng.choice(team_cards, len(shared)), np.ones(len(shared)))
        pairs = rng.choice(accounts, size=(len(accounts) // 2, 2))
        self.link("sim", pairs[:, 0], pairs[:, 1], rng.uniform(0.6, 0.8, len(pairs)))

    def fleet_block(self, members: np.ndarray, legit: np.ndarray) -> None:
        rng, size = self.rng, len(members)
        proxies = self.ips(max(2, size // 5), 0.7)
        k = rng.integers(2, 5, size)
        self.link("ip", np.repeat(members, k), rng.choice(proxies, k.sum()),
                  np.log1p(1 + rng.poisson(5, k.sum())))
        mixers = rng.choice(legit, max(1, size // 4), replace=False)  # hydra: shared with customers
        self.link("ip", mixers, rng.choice(proxies, len(mixers)), np.log1p(1 + rng.poisson(5, len(mixers))))
        cards = self.cards(max(2, size // 4), 0.5)
        k = rng.integers(1, 3, size)
        self.link("pay", np.repeat(members, k), rng.choice(cards, k.sum()), np.ones(k.sum()))
        other = rng.choice(members, size=(size, 3))
        self.link("sim", np.repeat(members, 3), other.reshape(-1), rng.uniform(0.7, 0.95, 3 * size))


def _edges(rows: list[np.ndarray], symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    table = np.concatenate(rows) if rows else np.zeros((0, 3))
    src, dst, w = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2]
    if symmetric:
        keep = src != dst
        a, b = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
        _, first = np.unique(a * (b.max(initial=0) + 1) + b, return_index=True)
        a, b, w = a[first], b[first], w[keep][first]
        src, dst, w = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([w, w])
    return torch.from_numpy(np.stack([src, dst])), torch.from_numpy(w.astype(np.float32))


def _standardise(x: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    mean, std = x.mean(0), x.std(0) + 1e-6
    return (x - mean) / std, mean.tolist(), std.tolist()


def _finish(b: _Builder, rng: np.random.Generator, label_share: float, holdout_campaign: int,
            params: dict[str, object]) -> Snapshot:
    data = HeteroData()
    names = {ACCOUNT: [f"f_{i}" for i in range(b.n_features)], IP: ["is_datacenter", "asn_noise"],
             PAYMENT: ["is_prepaid"]}
    stats: dict[str, dict[str, list[float]]] = {}
    for nt, parts in ((ACCOUNT, b.acc_x), (IP, b.ip_x), (PAYMENT, b.pay_x)):
        x, mean, std = _standardise(np.concatenate(parts))
        data[nt].x = torch.from_numpy(x.astype(np.float32))
        data[nt].num_nodes = x.shape[0]
        stats[nt] = {"mean": mean, "std": std}
    fake, fleet = np.concatenate(b.fake), np.concatenate(b.fleet)
    campaign = np.concatenate(b.campaign)
    n = len(fake)
    labelled = rng.random(n) < label_share
    y = np.where(labelled, fake.astype(np.int64), -1)
    label_time = np.where(labelled, rng.uniform(1.7e9, 1.71e9, n), np.nan)
    holdout = labelled & (campaign == holdout_campaign)
    rest = labelled & ~holdout
    order = np.argsort(np.where(rest, label_time, np.inf))[: int(rest.sum())]
    cut1, cut2 = int(len(order) * 0.6), int(len(order) * 0.8)
    masks = {name: np.zeros(n, dtype=bool) for name in ("train", "val", "test")}
    masks["train"][order[:cut1]] = True
    masks["val"][order[cut1:cut2]] = True
    masks["test"][order[cut2:]] = True
    acc = data[ACCOUNT]
    acc.y = torch.from_numpy(y)
    acc.label_time = torch.from_numpy(label_time)
    for name, mask in masks.items():
        acc[f"{name}_mask"] = torch.from_numpy(mask)
    acc.holdout_mask = torch.from_numpy(holdout)
    acc.group = torch.from_numpy(campaign.astype(np.int64))
    acc.group_names = [f"campaign-{i}" for i in range(int(campaign.max(initial=-1)) + 1)]
    acc.fleet = torch.from_numpy(fleet.astype(np.int64))
    acc.fleet_names = [f"fleet-{i}" for i in range(int(fleet.max(initial=-1)) + 1)]
    for (s, rel, d), kind, sym in ((EDGE_TYPES[0], "ip", False), (EDGE_TYPES[2], "pay", False),
                                   (EDGE_TYPES[4], "sim", True)):
        ei, w = _edges(b.edges[kind], sym)
        data[s, rel, d].edge_index, data[s, rel, d].edge_weight = ei, w
        if not sym:
            data[d, f"rev_{rel}", s].edge_index, data[d, f"rev_{rel}", s].edge_weight = ei.flip(0), w
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    id_maps = {nt: np.asarray([f"{nt}-{i}" for i in range(data[nt].num_nodes)], dtype=object)
               for nt in (ACCOUNT, IP, PAYMENT)}
    return Snapshot(data=data, id_maps=id_maps, feature_names=names, feature_stats=stats,
                    content_hash=digest[:32], meta={"synthetic": params})


def planted_snapshot(*, accounts: int = 2000, fake_share: float = 0.08, fleet_size: int = 25,
                     campaigns: int = 3, n_features: int = 8, feature_shift: float = 0.35,
                     label_share: float = 0.7, holdout_campaign: int | None = -1,
                     seed: int = 0) -> Snapshot:
    """A synthetic world with planted fleets; ``holdout_campaign=-1`` holds out the last
    campaign, ``None`` holds out nothing."""
    params = dict(locals())
    rng = np.random.default_rng(seed)
    b = _Builder(rng, n_features, feature_shift)
    n_fake = int(accounts * fake_share)
    legit = b.accounts(accounts - n_fake)
    b.legit_block(legit, b.ips(max(2, accounts // 5), 0.1), b.cards(max(2, accounts // 50), 0.05))
    n_fleets = max(1, n_fake // fleet_size)
    for f in range(n_fleets):
        b.fleet_block(b.accounts(fleet_size, fleet=f, campaign=f % campaigns), legit)
    held = (campaigns - 1 if holdout_campaign == -1 else holdout_campaign)
    return _finish(b, rng, label_share, -99 if held is None else held, params)


def append_fleet(*, accounts: int = 2000, new_fleet_size: int = 25, new_legit: int = 25,
                 seed: int = 0, **kwargs: object) -> tuple[Snapshot, np.ndarray, np.ndarray]:
    """The world of ``planted_snapshot(accounts=..., seed=...)`` plus a new fleet and new legit
    accounts on fresh IPs and cards; returns (snapshot, new fleet rows, new legit rows).

    Rebuilt from the same seed, so every old node keeps its row and (up to the refit
    standardisation) its features.
    """
    base = planted_snapshot(accounts=accounts, seed=seed, **kwargs)  # type: ignore[arg-type]
    params = dict(base.meta["synthetic"])
    rng = np.random.default_rng(params["seed"])
    b = _Builder(rng, int(params["n_features"]), float(params["feature_shift"]))  # type: ignore[arg-type]
    n_fake = int(accounts * float(params["fake_share"]))  # type: ignore[arg-type]
    legit = b.accounts(accounts - n_fake)
    b.legit_block(legit, b.ips(max(2, accounts // 5), 0.1), b.cards(max(2, accounts // 50), 0.05))
    fleet_size, campaigns = int(params["fleet_size"]), int(params["campaigns"])  # type: ignore[arg-type]
    n_fleets = max(1, n_fake // fleet_size)
    for f in range(n_fleets):
        b.fleet_block(b.accounts(fleet_size, fleet=f, campaign=f % campaigns), legit)
    new_legit_rows = b.accounts(new_legit)
    b.legit_block(new_legit_rows, b.ips(max(2, new_legit // 5), 0.1), b.cards(2, 0.05))
    new_rows = b.accounts(new_fleet_size, fleet=n_fleets, campaign=campaigns)
    b.fleet_block(new_rows, new_legit_rows)
    held = params["holdout_campaign"]
    held_code = campaigns - 1 if held == -1 else (-99 if held is None else held)
    snap = _finish(b, rng, float(params["label_share"]), int(held_code), params)  # type: ignore[arg-type]
    acc = snap.data[ACCOUNT]
    new = torch.zeros(snap.num_accounts, dtype=torch.bool)
    new[torch.from_numpy(np.concatenate([new_legit_rows, new_rows]))] = True
    for name in ("train_mask", "val_mask", "test_mask", "holdout_mask"):
        acc[name] = acc[name] & ~new
    acc.y[new] = -1
    return snap, new_rows, new_legit_rows
