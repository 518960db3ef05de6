"""CUDA paths: training, inference and evidence on a GPU give the CPU's answers.

Every test is marked ``gpu`` and skipped when ``torch.cuda.is_available()`` is false;
``scripts/test.sh`` deselects them by default (``-m "not slow and not gpu"``). On a GPU
machine, from the repository root::

    python -m pytest tests/gpu -m gpu -q -p no:cacheprovider --noconftest

Nothing here needs Neo4j or Java, and every fixture is defined in this file, so
``--noconftest`` (which keeps the root conftest and its Neo4j helpers out) is safe. The
evidence module is imported through ``sybilgnn.scoring``, whose ``__init__`` imports
``sybilgnn.scoring.fleets``, which imports the ``neo4j`` driver at module level: the driver
package must be importable (no server is started). pydantic is needed by ``sybilgnn.config``.

Dry run on CPU: ``SYBILGNN_TEST_GPU_DEVICE=cpu`` makes the "device" side of every comparison
run on CPU too (CPU against CPU), which checks the tests' own logic without a GPU. It
proves nothing about CUDA; the default is ``cuda``.

Tolerances: CPU and CUDA sum in different orders (cuSPARSE vs CPU CSR products, other
reduction trees), so float32 results differ by a few ulps per operation. Training runs
without dropout (its masks come from device-specific generators) and builds its weights on
CPU under the seed before moving them, so both devices start from the same weights and do
the same arithmetic. The tolerances were sized on CPU by multiplying every graph
aggregation's output by (1 + eps * N(0, 1)), fresh noise per call, i.e. far more than
float32 rounding (~6e-8 per operation): every test here passes at eps = 1e-5 (probabilities
at eps = 3e-6), while a wrong CUDA result would be off by O(1). Beyond eps ~3e-6 training
can take a slightly different path (Adam's first steps are ~lr * sign(grad), and a ReLU or
a gradient near zero can tip), which moves a few weights by up to lr / 2 and the late
losses by ~0.2 %; the later-epoch and weight checks allow for that, the early epochs and the
validation metrics do not.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from sybilgnn.config import Settings, load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.models import SybilGNN, build_model
from sybilgnn.training import TrainResult, load_model, predict, predict_logits, train
from sybilgnn.training import loop
from sybilgnn.training.inputs import (account_labels, graph_inputs, resolve_device,
                                      resolve_settings)
from tests.synthetic import planted_snapshot

DEVICE = os.environ.get("SYBILGNN_TEST_GPU_DEVICE", "cuda")
if DEVICE not in ("cuda", "cpu"):
    raise ValueError(f"SYBILGNN_TEST_GPU_DEVICE={DEVICE!r}: use cuda (default) or cpu (dry run)")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(),
        reason="needs a CUDA device (torch.cuda.is_available() is False); "
               "SYBILGNN_TEST_GPU_DEVICE=cpu dry-runs these tests on CPU"),
]

# The training tests' planted world; validation AUPRC reaches 1.0 at epoch 10 of 12.
WORLD = dict(accounts=1500, fake_share=0.12, fleet_size=20, seed=3)
EPOCHS = 12
OVERRIDES = [
    "model.hidden=32",
    "model.dropout=0.0",  # dropout masks come from device-specific generators
    f"train.epochs={EPOCHS}", f"train.min_epochs={EPOCHS}", f"train.patience={EPOCHS}",
    f"train.prevalence={WORLD['fake_share']}",
]


def _settings(device: str) -> Settings:
    return load_settings(config_file=None, overrides=[*OVERRIDES, f"train.device={device}"],
                         environ={})


@pytest.fixture(autouse=True, scope="module")
def _full_float32_matmul() -> Iterator[None]:
    """Plain float32 matmuls on CUDA (no TF32), whatever the environment asks for, so the
    comparisons measure summation order only."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


@pytest.fixture(scope="module")
def world() -> Snapshot:
    return planted_snapshot(**WORLD)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cpu_run(world: Snapshot) -> TrainResult:
    return train(world, _settings("cpu"))


@dataclass
class _Seen:
    """What the training loop handed the model, recorded by spies."""

    models: list[SybilGNN] = field(default_factory=list)
    forward_devices: set[str] = field(default_factory=set)   # inputs, edges, CSR, logits
    epoch_param_devices: list[set[str]] = field(default_factory=list)
    cuda_bytes: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def device_run(world: Snapshot) -> Iterator[tuple[TrainResult, _Seen]]:
    """``train`` with ``train.device=DEVICE``, spying on the model it builds."""
    seen = _Seen()
    real_build = loop.build_model

    def build(*args: Any, **kwargs: Any) -> SybilGNN:
        model = real_build(*args, **kwargs)
        real_forward = model.forward_prepared

        def forward_prepared(x_dict: dict[str, torch.Tensor], graph: Any) -> torch.Tensor:
            out = real_forward(x_dict, graph)
            seen.forward_devices.update(x.device.type for x in x_dict.values())
            seen.forward_devices.add(out.device.type)
            for rel in graph.relations.values():
                seen.forward_devices.add(rel.edge_index.device.type)
                for adj, adj_t in rel._csr_cache.values():
                    seen.forward_devices.update((adj.device.type, adj_t.device.type))
            return out

        model.forward_prepared = forward_prepared  # type: ignore[method-assign]
        seen.models.append(model)
        return model

    def on_epoch(record: dict[str, Any]) -> None:
        seen.epoch_param_devices.append({p.device.type for p in seen.models[-1].parameters()})
        if DEVICE == "cuda":
            seen.cuda_bytes.append(torch.cuda.memory_allocated())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "build_model", build)
        result = train(world, _settings(DEVICE), epoch_callback=on_epoch)
    yield result, seen


# --- a. training ---------------------------------------------------------------------------


def test_training_on_device_uses_it_and_matches_cpu(cpu_run: TrainResult,
                                                    device_run: tuple[TrainResult, _Seen]) -> None:
    result, seen = device_run
    # the run happened on the device: weights, inputs, CSR adjacency and logits
    assert result.device == DEVICE and cpu_run.device == "cpu"
    assert len(seen.models) == 1
    assert seen.epoch_param_devices == [{DEVICE}] * result.epochs_run
    assert seen.forward_devices == {DEVICE}
    if DEVICE == "cuda":
        assert min(seen.cuda_bytes) > 0
    assert {v.device.type for v in result.state_dict.values()} == {"cpu"}  # copied back

    # same seed, same weights, no dropout: the same trajectory up to float32 summation order
    # (noise-injection measurements in the module docstring)
    assert result.epochs_run == cpu_run.epochs_run == EPOCHS
    loss_dev = [h["loss"] for h in result.history]
    loss_cpu = [h["loss"] for h in cpu_run.history]
    np.testing.assert_allclose(loss_dev[:5], loss_cpu[:5], rtol=1e-3)  # eps=1e-5: <= 5e-5
    np.testing.assert_allclose(loss_dev, loss_cpu, rtol=2e-2)  # eps=3e-5: <= 2e-3
    np.testing.assert_allclose([h["val_auprc"] for h in result.history],
                               [h["val_auprc"] for h in cpu_run.history], rtol=0, atol=0.05)
    assert result.best_epoch == cpu_run.best_epoch
    for split in ("val", "test", "holdout"):
        for metric in ("auprc", "auroc"):
            assert result.metrics[split][metric] == pytest.approx(
                cpu_run.metrics[split][metric], abs=1e-3, nan_ok=True), (split, metric)
    assert result.threshold == pytest.approx(cpu_run.threshold, abs=2e-3)  # eps=3e-5: 1e-3

    # best weights agree: a tipped first Adam step moves some weights by up to lr / 2
    # (eps=3e-5: worst 4.8e-3, mean 9e-5); a device bug would move all of them
    diffs = torch.cat([(result.state_dict[k].float() - v.float()).abs().view(-1)
                       for k, v in cpu_run.state_dict.items()])
    assert float(diffs.max()) <= 0.02 and float(diffs.mean()) <= 1e-3

    # and it learned: loss far below the untrained loss, fleets separated on validation
    assert result.history[-1]["loss"] < 0.1 * result.history[0]["loss"]
    assert result.metrics["val"]["auprc"] >= 0.95


@pytest.mark.parametrize("layer_type, aggr", [("sage", "mean"), ("sage", "max"),
                                              ("graph", "sum"), ("gat", "mean")])
def test_same_weights_same_logits_and_gradients(world: Snapshot, layer_type: str,
                                                aggr: str) -> None:
    """Forward pass and one optimiser step of identical weights, CPU vs device."""
    model_cfg, cfg = resolve_settings(_settings("cpu"),
                                      {"layer_type": layer_type, "aggr": aggr})
    labels = account_labels(world)
    idx = np.flatnonzero(labels.masks["train"])
    inputs_cpu = graph_inputs(world, "cpu")
    torch.manual_seed(0)
    model_cpu = build_model(inputs_cpu.metadata, inputs_cpu.in_dims, model_cfg)
    model_dev = copy.deepcopy(model_cpu).to(DEVICE)

    def step(model: SybilGNN, device: str) -> tuple[torch.Tensor, float, dict[str, torch.Tensor],
                                                      float]:
        inputs = graph_inputs(world, device)
        graph = model.prepare(inputs.x_dict, inputs.edge_index_dict, inputs.edge_weight_dict)
        train_idx = torch.from_numpy(idx).to(device)
        y = torch.from_numpy(labels.y).to(device)[train_idx].float()
        loss_fn = loop.make_loss(cfg, y)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()
        opt.zero_grad()
        logits = model.forward_prepared(inputs.x_dict, graph)
        assert logits.device.type == device
        loss = loss_fn(logits[train_idx], y)
        loss.backward()
        grads = {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()
                 if p.grad is not None}
        opt.step()
        with torch.no_grad():
            after = float(loss_fn(model.forward_prepared(inputs.x_dict, graph)[train_idx], y))
        return logits.detach().cpu(), float(loss.detach()), grads, after

    logits_c, loss_c, grads_c, after_c = step(model_cpu, "cpu")
    logits_d, loss_d, grads_d, after_d = step(model_dev, DEVICE)
    assert {p.device.type for p in model_dev.parameters()} == {DEVICE}

    torch.testing.assert_close(logits_d, logits_c, rtol=1e-4, atol=1e-5)
    assert loss_d == pytest.approx(loss_c, rel=1e-5)
    assert grads_d.keys() == grads_c.keys() == {n for n, _ in model_cpu.named_parameters()}
    for name, g_c in grads_c.items():
        g_d = grads_d[name]
        err = float((g_d - g_c).norm()) / max(float(g_c.norm()), 1e-12)
        if aggr == "max":
            # amax routes a destination's gradient to its largest message; two messages
            # equal up to rounding may pick different sources on the two devices, so
            # compare whole tensors only
            assert err <= 1e-2, (name, err)
        else:
            assert err <= 5e-3, (name, err)  # eps=1e-5: <= 1.6e-3 (graph/sum)
            torch.testing.assert_close(g_d, g_c, rtol=2e-2, atol=2e-3 * float(g_c.abs().max()),
                                       msg=lambda m, name=name: f"{name}: {m}")
    # the step went downhill on both devices, by the same amount
    assert after_d < loss_d and after_c < loss_c
    assert after_d == pytest.approx(after_c, rel=1e-3)


# --- b. inference / scoring ----------------------------------------------------------------


def test_inference_on_device_matches_cpu(world: Snapshot, cpu_run: TrainResult) -> None:
    """``predict`` (what ``run_scoring`` calls with ``train.device``) on the device."""
    model = load_model(cpu_run.model_config, cpu_run.state_dict)
    logits_cpu = predict_logits(model, world, device="cpu")
    logits_dev = predict_logits(model, world, device=DEVICE)
    assert {p.device.type for p in model.parameters()} == {DEVICE}  # predict moved it
    # rounding errors scale with the activations, not with each (possibly near-zero) logit:
    # 1e-5 of the largest logit (|logit| <= ~4 here); eps=3e-6 gives <= 1.8e-5
    atol = 1e-5 * max(1.0, float(np.abs(logits_cpu).max()))
    np.testing.assert_allclose(logits_dev, logits_cpu, rtol=1e-5, atol=atol)

    # calibrated probabilities: that tolerance carried through the calibrator's steepest
    # slope (Platt: a / 4 per logit; a ~ 9 here)
    probs_cpu = predict(cpu_run, world, device="cpu")
    probs_dev = predict(cpu_run, world, device=DEVICE)
    assert probs_dev.shape == probs_cpu.shape == (world.num_accounts,)
    slope = abs(cpu_run.calibrator["a"]) / 4 if cpu_run.calibrator["method"] == "platt" else 1.0
    atol *= max(1.0, slope)
    np.testing.assert_allclose(probs_dev, probs_cpu, rtol=0, atol=atol)

    # the default train.device=auto takes the GPU where there is one, with the same scores
    # (CUDA's atomic index_add / bincount may reorder sums from one run to the next)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_allclose(predict(cpu_run, world, device="auto"), probs_dev,
                               rtol=0, atol=atol)

    # the same accounts are flagged, apart from any within rounding of the threshold
    threshold = cpu_run.threshold
    clear = np.abs(probs_cpu - threshold) > atol
    np.testing.assert_array_equal(probs_dev[clear] >= threshold, probs_cpu[clear] >= threshold)
    fake = world.data["account"].fleet.numpy() >= 0
    assert (probs_dev >= threshold)[fake].mean() >= 0.8


# --- c. evidence ---------------------------------------------------------------------------


@pytest.mark.parametrize("edge_type, how", [
    (("ip", "rev_used_ip", "account"), "weighted_mean"),
    (("account", "prompt_similar", "account"), "sum"),
    (("account", "used_ip", "ip"), "mean"),  # popular IPs: long rows
])
def test_masked_spmm_forward_and_gradients_match_cpu(world: Snapshot,
                                                     edge_type: tuple[str, str, str], how: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sybilgnn.scoring import evidence

    monkeypatch.setattr(evidence, "_EDGE_CHUNK", 97)  # many edge chunks, last one partial
    store = world.data[edge_type]
    num_src = int(world.data[edge_type[0]].num_nodes)
    num_dst = int(world.data[edge_type[2]].num_nodes)
    num_edges = int(store.edge_index.size(1))
    assert num_edges > 10 * 97

    def run(device: str) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(4)
        x = torch.randn(num_src, 16, generator=gen).to(device).requires_grad_(True)
        mask = (torch.rand(num_edges, generator=gen) + 0.5).to(device).requires_grad_(True)
        weight_out = torch.randn(num_dst, 16, generator=gen).to(device)
        rel = evidence._MaskedRelation(
            edge_index=store.edge_index.long().to(device),
            edge_weight=store.edge_weight.float().to(device),
            num_src=num_src, num_dst=num_dst, mask=mask)
        values = rel._values(how).detach()
        out = evidence._MaskedSpmm.apply(rel, values, x, mask)
        assert out.device.type == device and out.shape == (num_dst, 16)
        (out * weight_out).sum().backward()
        with torch.no_grad():  # the relation's own entry point gives the same product
            torch.testing.assert_close(rel.aggregate(x, how), out)  # type: ignore[arg-type]
        # the textbook gather/scatter product on the same device, as the reference
        x_ref = x.detach().clone().requires_grad_(True)
        mask_ref = mask.detach().clone().requires_grad_(True)
        src, dst = rel.edge_index
        ref = x_ref.new_zeros(num_dst, 16).index_add(
            0, dst, x_ref[src] * (values * mask_ref).unsqueeze(-1))
        (ref * weight_out).sum().backward()
        assert x.grad is not None and mask.grad is not None
        assert x_ref.grad is not None and mask_ref.grad is not None
        return {"out": out.detach().cpu(), "grad_x": x.grad.cpu(), "grad_mask": mask.grad.cpu(),
                "ref_out": ref.detach().cpu(), "ref_grad_x": x_ref.grad.cpu(),
                "ref_grad_mask": mask_ref.grad.cpu()}

    cpu, dev = run("cpu"), run(DEVICE)
    assert float(cpu["grad_mask"].abs().sum()) > 0 and float(cpu["grad_x"].abs().sum()) > 0
    for key in ("out", "grad_x", "grad_mask"):
        torch.testing.assert_close(dev[key], cpu[key], rtol=1e-4, atol=1e-5,
                                   msg=lambda m, key=key: f"{key}, device vs CPU: {m}")
        torch.testing.assert_close(dev[key], dev[f"ref_{key}"], rtol=1e-4, atol=1e-5,
                                   msg=lambda m, key=key: f"{key}, CSR vs gather/scatter: {m}")


def _split_value(item: str) -> tuple[str, float]:
    """``"label (+0.123)"`` -> ``("label", 0.123)``."""
    label, value = item.rsplit(" (", 1)
    return label, float(value.rstrip(")"))


def _assert_same_ranking(cpu: list[tuple[str, float]], dev: list[tuple[str, float]],
                         tol: float, what: str) -> None:
    """Same labels in the same order, except labels whose values tie within ``tol``."""
    assert len(dev) == len(cpu), (what, cpu, dev)
    assert Counter(label for label, _ in dev) == Counter(label for label, _ in cpu), \
        (what, cpu, dev)
    for (l_c, v_c), (l_d, v_d) in zip(cpu, dev):
        assert abs(abs(v_d) - abs(v_c)) <= tol, (what, cpu, dev)
        if l_c != l_d:  # only a near-tie may swap places
            assert any(abs(abs(v) - abs(v_c)) <= tol for l, v in cpu if l == l_d), \
                (what, cpu, dev)
    for label in {label for label, _ in cpu}:
        got = sorted(v for l, v in dev if l == label)
        want = sorted(v for l, v in cpu if l == label)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{what} {label}")


def test_evidence_on_device_matches_cpu(world: Snapshot, cpu_run: TrainResult,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``explain_accounts`` runs where the model is; a model on the device gives the CPU's
    features, relation shares and top neighbour edges."""
    from sybilgnn.scoring import evidence

    probs = predict(cpu_run, world, device="cpu")
    rows = np.argsort(-probs, kind="stable")[:40]
    kwargs: dict[str, Any] = dict(
        feature_names=world.feature_names["account"], id_maps=world.id_maps, scores=probs,
        threshold=cpu_run.threshold, feature_stats=world.feature_stats["account"],
        top_k=64,  # above any account's in-degree: every edge is listed, no top-k cut
        chunk_size=16)  # three chunks

    aggregated_on: set[str] = set()
    real_aggregate = evidence._MaskedRelation.aggregate

    def aggregate(self: Any, x_src: torch.Tensor, how: Any) -> torch.Tensor:
        aggregated_on.add(x_src.device.type)
        return real_aggregate(self, x_src, how)

    monkeypatch.setattr(evidence._MaskedRelation, "aggregate", aggregate)
    model_cpu = load_model(cpu_run.model_config, cpu_run.state_dict)
    model_dev = load_model(cpu_run.model_config, cpu_run.state_dict).to(DEVICE)
    ev_cpu = evidence.explain_accounts(model_cpu, world.data, rows, **kwargs)
    assert aggregated_on == {"cpu"}
    aggregated_on.clear()
    ev_dev = evidence.explain_accounts(model_dev, world.data, rows, **kwargs)
    assert aggregated_on == {DEVICE}  # the masked CSR product ran on the device
    assert {p.device.type for p in model_dev.parameters()} == {DEVICE}
    assert all(p.requires_grad for p in model_dev.parameters()) and not model_dev.training

    assert sorted(ev_dev) == sorted(ev_cpu) == sorted(rows.tolist())
    listed = 0
    for row in rows.tolist():
        c, d = ev_cpu[row], ev_dev[row]
        # neighbours: "USED_IP ip:ip-12 (+0.123)", ordered by |gradient|
        cpu_nb = [_split_value(n) for n in c.neighbours]
        dev_nb = [_split_value(n) for n in d.neighbours]
        _assert_same_ranking(cpu_nb, dev_nb, tol=2e-3, what=f"row {row} neighbours")
        assert len(cpu_nb) < kwargs["top_k"]  # no cut: near-ties cannot fall off the end
        listed += len(cpu_nb)
        if len(cpu_nb) >= 2 and abs(abs(cpu_nb[0][1]) - abs(cpu_nb[1][1])) > 2e-3:
            assert dev_nb[0][0] == cpu_nb[0][0], (row, cpu_nb, dev_nb)  # the top edge
        # features: "f_3=1.234 (+0.56)"; the raw value is the same input on both devices
        _assert_same_ranking([_split_value(f) for f in c.features],
                             [_split_value(f) for f in d.features], tol=0.011,
                             what=f"row {row} features")
        # relation shares: "USED_IP:0.62"
        share_c = {name: float(v) for name, v in (r.split(":") for r in c.relations)}
        share_d = {name: float(v) for name, v in (r.split(":") for r in d.relations)}
        for name in share_c.keys() | share_d.keys():
            assert share_d.get(name, 0.0) == pytest.approx(share_c.get(name, 0.0), abs=0.011)
        assert d.summary.split("; driven by")[0] == c.summary.split("; driven by")[0]
    assert listed > 5 * len(rows)  # the comparison covered many edges
