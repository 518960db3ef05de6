from __future__ import annotations

import pytest
import torch

from sybilgnn.config import ModelSettings
from sybilgnn.models import SybilGNN, build_model, prepare_graph, sampler_backend
from sybilgnn.models.graph import RelationGraph

EDGE_TYPES = [("account", "used_ip", "ip"), ("ip", "rev_used_ip", "account"),
              ("account", "paid_with", "payment"), ("payment", "rev_paid_with", "account"),
              ("account", "prompt_similar", "account")]
METADATA = (["account", "ip", "payment"], EDGE_TYPES)
IN_DIMS = {"account": 5, "ip": 2, "payment": 0}


def tiny_graph(seed: int = 0, n_acc: int = 30) -> tuple[dict, dict, dict]:
    gen = torch.Generator().manual_seed(seed)

    def edges(n_src: int, n_dst: int, count: int) -> torch.Tensor:
        return torch.stack([torch.randint(0, n_src, (count,), generator=gen),
                            torch.randint(0, n_dst, (count,), generator=gen)])

    a_ip, a_pay, sim = edges(n_acc, 8, 50), edges(n_acc, 12, 35), edges(n_acc, n_acc, 40)
    ei = {EDGE_TYPES[0]: a_ip, EDGE_TYPES[1]: a_ip.flip(0), EDGE_TYPES[2]: a_pay,
          EDGE_TYPES[3]: a_pay.flip(0), EDGE_TYPES[4]: torch.cat([sim, sim.flip(0)], 1)}
    ew = {et: torch.rand(e.size(1), generator=gen) + 0.5 for et, e in ei.items()}
    x = {"account": torch.randn(n_acc, 5, generator=gen), "ip": torch.randn(8, 2, generator=gen),
         "payment": torch.zeros(12, 0)}
    return x, ei, ew


@pytest.mark.parametrize("layer_type,aggr", [("sage", "mean"), ("sage", "max"), ("graph", "sum"),
                                             ("graph", "mean"), ("gat", "mean")])
def test_forward_gives_one_logit_per_account_and_trains_every_weight(layer_type: str,
                                                                     aggr: str) -> None:
    torch.manual_seed(0)
    model = build_model(METADATA, IN_DIMS, ModelSettings(layer_type=layer_type, aggr=aggr,
                                                         hidden=16, layers=2, dropout=0.0))
    x, ei, ew = tiny_graph()
    out = model(x, ei, ew)
    assert out.shape == (30,) and torch.isfinite(out).all()
    out.sum().backward()
    # the last layer updates accounts only, so every parameter gets a gradient
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert set(model.convs[-1].convs.keys()) == {et for et in EDGE_TYPES if et[2] == "account"}
    assert set(model.convs[0].convs.keys()) == set(EDGE_TYPES)


def test_prepared_forward_matches_plain_forward_and_is_inductive() -> None:
    model = build_model(METADATA, IN_DIMS, ModelSettings(hidden=16, dropout=0.0)).eval()
    x, ei, ew = tiny_graph()
    graph = model.prepare(x, ei, ew)
    torch.testing.assert_close(model.forward_prepared(x, graph), model(x, ei, ew))
    bigger = tiny_graph(seed=1, n_acc=45)  # other nodes, other sizes: no per-node parameters
    assert model(*bigger).shape == (45,)
    assert not any(p.shape[0] in (30, 45) for p in model.parameters())


def test_weighted_aggregations_exact() -> None:
    # sources 0,1,2 -> destination 0 with weights 1,1,2; destination 1 has no edges
    rel = RelationGraph(torch.tensor([[0, 1, 2], [0, 0, 0]]), torch.tensor([1.0, 1.0, 2.0]),
                        num_src=3, num_dst=2)
    x = torch.tensor([[1.0], [3.0], [5.0]])
    for how, top in (("weighted_mean", (1 + 3 + 10) / 4), ("sum", 14.0), ("mean", 14.0 / 3),
                     ("max", 10.0)):
        torch.testing.assert_close(rel.aggregate(x, how), torch.tensor([[top], [0.0]]))
    torch.testing.assert_close(rel.degree_features(),
                               torch.tensor([[3.0, 4.0], [0.0, 0.0]]).log1p())


def test_sparse_product_gradient_matches_dense() -> None:
    x, ei, ew = tiny_graph()
    et = EDGE_TYPES[1]
    rel = prepare_graph({et: ei[et]}, {et: ew[et]}, {"ip": 8, "account": 30}).relations[et]
    dense = torch.zeros(30, 8).index_put_((ei[et][1], ei[et][0]), ew[et], accumulate=True)
    src = torch.randn(8, 4, requires_grad=True)
    rel.aggregate(src, "sum").pow(2).sum().backward()
    expected = torch.autograd.grad((dense @ src).pow(2).sum(), src)[0]
    torch.testing.assert_close(src.grad, expected)


def test_config_dict_rebuilds_same_architecture() -> None:
    model = build_model(METADATA, IN_DIMS, ModelSettings(layer_type="gat", heads=3, hidden=8))
    cfg = model.config_dict()
    rebuilt = SybilGNN(cfg["metadata"], cfg["in_dims"], ModelSettings.model_validate(cfg["model"]))
    rebuilt.load_state_dict(model.state_dict(), strict=True)


def test_sampler_backend_matches_pyg_flags() -> None:
    import torch_geometric.typing as t

    expected = "pyg-lib" if t.WITH_PYG_LIB else "torch-sparse" if t.WITH_TORCH_SPARSE else None
    assert sampler_backend() == expected


def test_relations_left_out_are_not_read_at_all() -> None:
    from sybilgnn.errors import InputError

    torch.manual_seed(0)
    cfg = ModelSettings(hidden=16, dropout=0.0, relations=["prompt_similar"])
    model = build_model(METADATA, IN_DIMS, cfg).eval()
    assert model.edge_types == [("account", "prompt_similar", "account")]
    # the account input: its 5 features, the constant and the two degrees of one relation
    assert model.input_proj["account"].in_features == 5 + 1 + 2
    x, ei, ew = tiny_graph()
    scrambled = dict(ei)
    for et in EDGE_TYPES[:4]:  # rewire every IP and card edge: the logits cannot move
        scrambled[et] = torch.flip(ei[et], dims=[1])[:, : ei[et].size(1) // 2]
    torch.testing.assert_close(model(x, scrambled, ew), model(x, ei, ew))
    rebuilt = build_model(*_config_parts(model))
    assert rebuilt.edge_types == model.edge_types
    with pytest.raises(InputError, match=r"model.relations: \['used_ips'\] are not relations"):
        build_model(METADATA, IN_DIMS, ModelSettings(relations=["used_ips"]))


def _config_parts(model: SybilGNN) -> tuple:
    config = model.config_dict()
    metadata = (config["metadata"][0], [tuple(et) for et in config["metadata"][1]])
    return metadata, config["in_dims"], ModelSettings(**config["model"])


def test_feature_dropout_zeroes_whole_columns_in_training_only() -> None:
    torch.manual_seed(0)
    x, ei, ew = tiny_graph()
    model = build_model(METADATA, IN_DIMS, ModelSettings(hidden=16, dropout=0.0,
                                                         feature_dropout=0.5))
    graph = model.prepare(x, ei, ew)
    seen: list[torch.Tensor] = []
    model.input_proj["account"].register_forward_hook(lambda _m, args, _o: seen.append(args[0]))
    model.eval()
    eval_logits = model.forward_prepared(x, graph)
    torch.testing.assert_close(seen[-1][:, :5], x["account"])  # scoring reads every column
    torch.manual_seed(1)
    model.train()
    model.forward_prepared(x, graph)
    columns = seen[-1][:, :5]
    zeroed = (columns == 0).all(dim=0)
    # whole columns are dropped for every account at once, the rest pass unscaled
    assert 0 < int(zeroed.sum()) < 5
    torch.testing.assert_close(columns[:, ~zeroed], x["account"][:, ~zeroed])
    model.eval()
    torch.testing.assert_close(model.forward_prepared(x, graph), eval_logits)
