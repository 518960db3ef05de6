"""Epoch time and peak memory: SybilGNN's training step vs a plain PyG loop, same command.

    .venv/bin/python benchmarks/bench_train.py --accounts 100000

Each variant runs in its own child process (so peak memory is its own) on the same
synthetic graph: one IP per ~5 accounts and 2-4 edges per account per relation, with
popular IPs (NAT-like) and cards shared in small groups. The plain loops are written here
with stock PyG modules, Adam + BCE:

* ``pyg_same_model`` (the reference for the goal): the same model as SybilGNN's defaults
  written as a textbook loop: per-type Linear + LayerNorm + ReLU + dropout, HeteroConv of
  SAGEConv, each followed by LayerNorm + ReLU + dropout and a residual add, MLP head; CSR.
* ``pyg_edge_index`` / ``pyg_csr``: the bare textbook model (no norm, dropout or residual),
  compared with ``sybilgnn_bare``, SybilGNN with those switched off.
Peak memory is the child's peak RSS above its RSS once the graph is built (CPU), or
``torch.cuda.max_memory_allocated`` (CUDA).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EDGE_TYPES = [("account", "used_ip", "ip"), ("ip", "rev_used_ip", "account"),
              ("account", "paid_with", "payment"), ("payment", "rev_paid_with", "account"),
              ("account", "prompt_similar", "account")]
VARIANTS = ("sybilgnn", "pyg_same_model", "sybilgnn_bare", "pyg_edge_index", "pyg_csr")


def make_graph(n: int, seed: int, device: torch.device) -> dict:
    rng = np.random.default_rng(seed)
    n_ip, n_pay = max(2, n // 5), max(2, n // 2)

    def bipartite(n_dst: int, zipf: float) -> np.ndarray:
        k = rng.integers(2, 5, n)
        src = np.repeat(np.arange(n), k)
        weights = 1.0 / (np.arange(n_dst) + 1.0) ** zipf
        dst = rng.choice(n_dst, size=len(src), p=weights / weights.sum())
        return np.stack([src, dst])

    a_ip, a_pay = bipartite(n_ip, 0.6), bipartite(n_pay, 0.2)
    k = rng.integers(1, 3, n)  # 1-2 each way -> 2-4 per account after symmetrising
    s = np.repeat(np.arange(n), k)
    sim = np.stack([s, rng.integers(0, n, len(s))])
    sim = np.concatenate([sim, sim[::-1]], 1)
    ei = {EDGE_TYPES[0]: a_ip, EDGE_TYPES[1]: a_ip[::-1], EDGE_TYPES[2]: a_pay,
          EDGE_TYPES[3]: a_pay[::-1], EDGE_TYPES[4]: sim}
    ei = {et: torch.from_numpy(np.ascontiguousarray(v)).long().to(device) for et, v in ei.items()}
    ew = {et: torch.from_numpy(rng.uniform(0.5, 1.5, v.size(1)).astype(np.float32)).to(device)
          for et, v in ei.items()}
    x = {"account": torch.from_numpy(rng.normal(size=(n, 16)).astype(np.float32)).to(device),
         "ip": torch.from_numpy(rng.normal(size=(n_ip, 2)).astype(np.float32)).to(device),
         "payment": torch.from_numpy(rng.normal(size=(n_pay, 1)).astype(np.float32)).to(device)}
    y = torch.from_numpy((rng.random(n) < 0.05).astype(np.float32)).to(device)
    train_idx = torch.from_numpy(np.flatnonzero(rng.random(n) < 0.6)).to(device)
    return {"x": x, "ei": ei, "ew": ew, "y": y, "train_idx": train_idx,
            "num_nodes": {"account": n, "ip": n_ip, "payment": n_pay}}


class PlainPyG(nn.Module):
    """The textbook loop's model: Linear per type, HeteroConv(SAGEConv) x layers, Linear."""

    def __init__(self, in_dims: dict[str, int], hidden: int, layers: int) -> None:
        super().__init__()
        from torch_geometric.nn import HeteroConv, SAGEConv

        self.proj = nn.ModuleDict({nt: nn.Linear(d, hidden) for nt, d in in_dims.items()})
        self.convs = nn.ModuleList(HeteroConv({et: SAGEConv((hidden, hidden), hidden)
                                               for et in EDGE_TYPES}) for _ in range(layers))
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: dict, adj: dict) -> torch.Tensor:
        h = {nt: self.proj[nt](v).relu() for nt, v in x.items()}
        for conv in self.convs:
            h = {nt: v.relu() for nt, v in conv(h, adj).items()}
        return self.head(h["account"]).squeeze(-1)


class PlainPyGSameModel(nn.Module):
    """SybilGNN's default architecture from stock parts: norm, dropout, residual, MLP head."""

    def __init__(self, in_dims: dict[str, int], hidden: int, layers: int,
                 dropout: float = 0.2) -> None:
        super().__init__()
        from torch_geometric.nn import HeteroConv, SAGEConv

        self.proj = nn.ModuleDict({nt: nn.Linear(d, hidden) for nt, d in in_dims.items()})
        self.proj_norm = nn.ModuleDict({nt: nn.LayerNorm(hidden) for nt in in_dims})
        self.convs = nn.ModuleList(HeteroConv({et: SAGEConv((hidden, hidden), hidden)
                                               for et in EDGE_TYPES}) for _ in range(layers))
        self.norms = nn.ModuleList(nn.ModuleDict({nt: nn.LayerNorm(hidden) for nt in in_dims})
                                   for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x: dict, adj: dict) -> torch.Tensor:
        h = {nt: self.drop(self.proj_norm[nt](self.proj[nt](v)).relu()) for nt, v in x.items()}
        for conv, norms in zip(self.convs, self.norms):
            out = conv(h, adj)
            h = {nt: h[nt] + self.drop(norms[nt](m).relu()) for nt, m in out.items()}
        return self.head(h["account"]).squeeze(-1)


def csr_adjacency(g: dict, device: torch.device) -> dict:
    adj = {}
    for et, e in g["ei"].items():
        shape = (g["num_nodes"][et[2]], g["num_nodes"][et[0]])
        adj[et] = torch.sparse_coo_tensor(e.flip(0), torch.ones(e.size(1), device=device),
                                          shape).coalesce().to_sparse_csr()
    return adj


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = make_graph(args.accounts, args.seed, device)
    rss_graph = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    in_dims = {nt: v.size(1) for nt, v in g["x"].items()}
    prep_start = time.perf_counter()
    if variant.startswith("sybilgnn"):
        from sybilgnn.config import ModelSettings
        from sybilgnn.models import build_model

        bare = variant == "sybilgnn_bare"  # no norm / dropout / residual: the plain loop's math
        cfg = ModelSettings(layer_type="sage", hidden=args.hidden, layers=args.layers,
                            dropout=0.0 if bare else 0.2, norm="none" if bare else "layer",
                            residual=not bare)
        model = build_model((list(in_dims), EDGE_TYPES), in_dims, cfg).to(device)
        graph = model.prepare(g["x"], g["ei"], g["ew"])
        model.forward_prepared(g["x"], graph)  # builds the CSR matrices once
        step = lambda: model.forward_prepared(g["x"], graph)  # noqa: E731
    else:
        plain = PlainPyGSameModel if variant == "pyg_same_model" else PlainPyG
        model = plain(in_dims, args.hidden, args.layers).to(device)
        adj = g["ei"] if variant == "pyg_edge_index" else csr_adjacency(g, device)
        step = lambda: model(g["x"], adj)  # noqa: E731
    prep_s = time.perf_counter() - prep_start
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    times = []
    for epoch in range(args.warmup + args.epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tick = time.perf_counter()
        model.train()
        opt.zero_grad()
        logits = step()
        loss = F.binary_cross_entropy_with_logits(logits[g["train_idx"]], g["y"][g["train_idx"]])
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if epoch >= args.warmup:
            times.append(time.perf_counter() - tick)
    if device.type == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_graph) / 1024
    edges = sum(int(e.size(1)) for e in g["ei"].values())
    return {"variant": variant, "device": str(device), "accounts": args.accounts,
            "edges": edges, "epoch_ms_median": 1000 * statistics.median(times),
            "epoch_ms_min": 1000 * min(times), "prepare_s": prep_s, "peak_mib": peak_mib,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true", help="stay on CPU even with CUDA")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset (memory-bound sizes run only the pair)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    rows = []
    chosen = [v for v in VARIANTS if v in args.variants.split(",")]
    for variant in chosen:
        cmd = [sys.executable, "-W", "ignore", __file__, "--variant", variant] + sys.argv[1:]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    by_name = {r["variant"]: r for r in rows}
    ours = rows[0]
    print(f"{args.accounts} accounts, {ours['edges']} directed edges, hidden {args.hidden}, "
          f"{args.layers} layers, device {ours['device']}, {ours['threads']} threads")
    print("| variant | epoch ms (median) | epoch ms (min) | prepare s | peak MiB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['epoch_ms_median']:.0f} | {r['epoch_ms_min']:.0f} | "
              f"{r['prepare_s']:.2f} | {r['peak_mib']:.0f} |")
    plain_bare = [by_name[v] for v in ("pyg_edge_index", "pyg_csr") if v in by_name]
    pairs = [(by_name.get("sybilgnn"), by_name.get("pyg_same_model")),
             (by_name.get("sybilgnn_bare"),
              min(plain_bare, key=lambda r: r["epoch_ms_median"]) if plain_bare else None)]
    for mine, ref in ((m, r) for m, r in pairs if m is not None and r is not None):
        print(f"{mine['variant']} / {ref['variant']}: time "
              f"{mine['epoch_ms_median'] / ref['epoch_ms_median']:.2f}, memory "
              f"{mine['peak_mib'] / max(ref['peak_mib'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
