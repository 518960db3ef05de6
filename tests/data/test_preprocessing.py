"""The model's own preprocessing on hand-made snapshots, with every number worked out by hand.

Training snapshot (8 accounts, 3 IPs, 2 payment instruments):

    f_n_prompts  2 4 4 4 5 5 7 9            mean 5, population std 2
    f_age_days   10 30 - 10 30 10 30 -      known values: mean 20, std 10; 2 of 8 missing
    country      DE DE FR DE FR US - DE     top 2: DE (4), FR (2); US and missing -> <other>
    ip.asn       64500 64500 64501          top 5: both values
    payment      no feature properties      one constant column
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from sybilgnn.data.preprocessing import (CONSTANT, OTHER, Preprocessor,
                                         population_stability)
from sybilgnn.data.snapshot import RawFeatures, Snapshot
from sybilgnn.errors import InputError

NAN = float("nan")
TRAIN_PROMPTS = [2, 4, 4, 4, 5, 5, 7, 9]
TRAIN_AGE = [10, 30, NAN, 10, 30, 10, 30, NAN]
TRAIN_COUNTRY = ["DE", "DE", "FR", "DE", "FR", "US", None, "DE"]
ACCOUNT_COLUMNS = ["f_n_prompts", "f_age_days", "country=DE", "country=FR", f"country={OTHER}"]


def _accounts(prompts: list[float] | None, age: list[float] | None, country: list[str | None],
              **extra_numeric: list[float]) -> RawFeatures:
    numeric = {name: np.asarray(values, dtype=np.float64)
               for name, values in (("f_n_prompts", prompts), ("f_age_days", age),
                                    *extra_numeric.items()) if values is not None}
    return RawFeatures(numeric=numeric,
                       categorical={"country": np.asarray(country, dtype=object)})


def _snapshot(accounts: RawFeatures, *, transform: str = "log1p",
              content_hash: str = "train") -> Snapshot:
    """A snapshot as the export leaves it, but with a stale placeholder matrix per type."""
    n_accounts = len(accounts.categorical["country"])
    raw = {"account": accounts,
           "ip": RawFeatures(categorical={"asn": np.asarray(["64500", "64500", "64501"],
                                                           dtype=object)}),
           "payment": RawFeatures()}
    data = HeteroData()
    for node_type, n in (("account", n_accounts), ("ip", 3), ("payment", 2)):
        data[node_type].num_nodes = n
        data[node_type].x = torch.full((n, 1), -9.0)
    data["account", "used_ip", "ip"].edge_index = torch.tensor([[0, 1], [0, 0]])
    data["account", "used_ip", "ip"].edge_weight = torch.ones(2)
    meta = {"schema": {
        "nodes": {"account": {"categorical": {"country": 2}}, "ip": {"categorical": {"asn": 5}},
                  "payment": {"categorical": {}}},
        "relationships": {"used_ip": {"transform": transform}}}}
    return Snapshot(
        data=data,
        id_maps={nt: np.asarray([f"{nt}-{i}" for i in range(int(data[nt].num_nodes))],
                                dtype=object) for nt in ("account", "ip", "payment")},
        feature_names={nt: ["stale"] for nt in ("account", "ip", "payment")},
        feature_stats={}, content_hash=content_hash, meta=meta, raw=raw)


@pytest.fixture()
def train_snapshot() -> Snapshot:
    return _snapshot(_accounts(TRAIN_PROMPTS, TRAIN_AGE, TRAIN_COUNTRY))


@pytest.fixture()
def fitted(train_snapshot: Snapshot) -> Preprocessor:
    return Preprocessor.fit(train_snapshot)


def test_fit_uses_training_mean_std_vocabulary_and_column_order(
        fitted: Preprocessor, train_snapshot: Snapshot) -> None:
    assert fitted.fitted_on == "train"
    assert fitted.edge_transforms == {"used_ip": "log1p"}
    assert fitted.feature_names == {
        "account": ACCOUNT_COLUMNS,
        "ip": ["asn=64500", "asn=64501", f"asn={OTHER}"],
        "payment": [CONSTANT]}
    assert fitted.feature_stats["account"] == {"mean": [5.0, 20.0, 0.0, 0.0, 0.0],
                                               "std": [2.0, 10.0, 1.0, 1.0, 1.0]}
    np.testing.assert_array_equal(fitted.encode("account", train_snapshot), np.array([
        # z(prompts) z(age)  DE   FR  <other>
        [-1.5, -1.0, 1, 0, 0],
        [-0.5, 1.0, 1, 0, 0],
        [-0.5, 0.0, 0, 1, 0],    # missing age: 0, the training mean
        [-0.5, -1.0, 1, 0, 0],
        [0.0, 1.0, 0, 1, 0],
        [0.0, -1.0, 0, 0, 1],    # US: outside the top 2
        [1.0, 1.0, 0, 0, 1],     # missing country
        [2.0, 0.0, 1, 0, 0],
    ], dtype=np.float32))
    np.testing.assert_array_equal(fitted.encode("ip", train_snapshot),
                                  np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32))
    np.testing.assert_array_equal(fitted.encode("payment", train_snapshot), np.ones((2, 1)))
    country = fitted.nodes["account"].categorical[0]
    assert (country.vocabulary, country.expected) == (("DE", "FR"), (0.5, 0.25, 0.25))
    age = fitted.nodes["account"].numeric[1]
    assert (age.edges, age.expected) == ((10.0, 20.0, 30.0), (0.25, 0.0, 0.375, 0.0, 0.375))


def test_transform_puts_matrices_names_stats_and_digest_on_a_copy(
        fitted: Preprocessor, train_snapshot: Snapshot) -> None:
    encoded = fitted.transform(train_snapshot)
    assert encoded is not train_snapshot
    assert encoded.encoding == fitted.digest
    assert encoded.feature_names == fitted.feature_names
    assert encoded.feature_stats == fitted.feature_stats
    assert encoded.data["account"].x.shape == (8, 5)
    assert encoded.data["account"].x.dtype == torch.float32
    # the graph is shared, the input snapshot is left as it was
    assert encoded.data["account", "used_ip", "ip"].edge_index is \
        train_snapshot.data["account", "used_ip", "ip"].edge_index
    assert torch.equal(train_snapshot.data["account"].x, torch.full((8, 1), -9.0))
    assert train_snapshot.feature_names["account"] == ["stale"]
    assert fitted.transform(encoded) is encoded  # already in the model's encoding


def test_transform_returns_the_snapshot_itself_when_its_encoding_is_the_digest(
        fitted: Preprocessor, train_snapshot: Snapshot) -> None:
    train_snapshot.encoding = fitted.digest
    assert fitted.transform(train_snapshot) is train_snapshot
    assert torch.equal(train_snapshot.data["account"].x, torch.full((8, 1), -9.0))
    train_snapshot.encoding = "another preprocessing"
    assert fitted.transform(train_snapshot) is not train_snapshot


def test_new_snapshot_is_scaled_with_training_stats_unseen_country_to_other(
        fitted: Preprocessor) -> None:
    # Columns in another order, an extra numeric and an extra categorical property, a
    # country never seen in training and prompt counts from another distribution.
    today = RawFeatures(
        numeric={"f_new": np.array([1.0, 2.0, 3.0, 4.0]),
                 "f_age_days": np.array([20.0, 40.0, 10.0, 30.0]),
                 "f_n_prompts": np.array([10.0, 20.0, 5.0, NAN])},
        categorical={"plan": np.array(["pro", "free", "pro", "pro"], dtype=object),
                     "country": np.array(["JP", "DE", "FR", None], dtype=object)})
    encoded = fitted.transform(_snapshot(today, content_hash="today"))
    assert encoded.feature_names["account"] == ACCOUNT_COLUMNS
    np.testing.assert_array_equal(encoded.data["account"].x.numpy(), np.array([
        [2.5, 0.0, 0, 0, 1],     # (10 - 5) / 2, not refitted; JP -> country=<other>
        [7.5, 2.0, 1, 0, 0],     # (20 - 5) / 2, (40 - 20) / 10
        [0.0, -1.0, 0, 1, 0],
        [0.0, 1.0, 0, 0, 1],     # missing prompts: 0; missing country: <other>
    ], dtype=np.float32))


def test_missing_numeric_property_is_an_input_error_naming_it(fitted: Preprocessor) -> None:
    without_age = _snapshot(_accounts(TRAIN_PROMPTS, None, TRAIN_COUNTRY))
    with pytest.raises(InputError, match=r"account property 'f_age_days' is missing") as info:
        fitted.transform(without_age)
    assert "export.nodes.account" in str(info.value)
    with pytest.raises(InputError, match="'f_age_days'"):
        fitted.drift(without_age)


def test_missing_categorical_property_node_type_or_raw_columns_are_input_errors(
        fitted: Preprocessor, train_snapshot: Snapshot) -> None:
    del train_snapshot.raw["ip"].categorical["asn"]
    with pytest.raises(InputError, match="ip property 'asn' is missing"):
        fitted.transform(train_snapshot)
    del train_snapshot.raw["ip"]
    with pytest.raises(InputError, match="no raw properties of node type 'ip'"):
        fitted.transform(train_snapshot)
    del train_snapshot.data["payment"]
    with pytest.raises(InputError, match=r"lacks node types \['payment'\]"):
        fitted.transform(train_snapshot)


def test_changed_edge_transform_is_an_input_error(fitted: Preprocessor) -> None:
    snapshot = _snapshot(_accounts(TRAIN_PROMPTS, TRAIN_AGE, TRAIN_COUNTRY), transform="none")
    with pytest.raises(InputError, match=r"export.relationships.used_ip.transform is 'none', "
                                         r"the model was trained on 'log1p'"):
        fitted.transform(snapshot)


def test_to_dict_from_dict_round_trip(fitted: Preprocessor, train_snapshot: Snapshot) -> None:
    payload = json.loads(json.dumps(fitted.to_dict()))  # as saved in model.json
    again = Preprocessor.from_dict(payload)
    assert again.digest == fitted.digest
    assert again.to_dict() == fitted.to_dict()
    assert again.fitted_on == "train"
    for node_type in ("account", "ip", "payment"):
        np.testing.assert_array_equal(again.encode(node_type, train_snapshot),
                                      fitted.encode(node_type, train_snapshot))
    assert again.drift(train_snapshot) == fitted.drift(train_snapshot)
    with pytest.raises(InputError, match="preprocessor format 7"):
        Preprocessor.from_dict({**payload, "format": 7})


def test_digest_ignores_where_it_was_fitted_but_not_what_it_does(
        fitted: Preprocessor) -> None:
    same = _snapshot(_accounts(TRAIN_PROMPTS, TRAIN_AGE, TRAIN_COUNTRY), content_hash="copy")
    assert Preprocessor.fit(same).digest == fitted.digest
    other = _snapshot(_accounts([p + 1 for p in TRAIN_PROMPTS], TRAIN_AGE, TRAIN_COUNTRY))
    assert Preprocessor.fit(other).digest != fitted.digest


def test_drift_of_the_training_snapshot_is_zero(fitted: Preprocessor,
                                                train_snapshot: Snapshot) -> None:
    assert fitted.drift(train_snapshot) == {"account.f_n_prompts": 0.0,
                                            "account.f_age_days": 0.0,
                                            "account.country": 0.0, "ip.asn": 0.0}


def test_drift_when_most_accounts_move_to_a_new_country(fitted: Preprocessor) -> None:
    moved = _snapshot(_accounts(TRAIN_PROMPTS, [NAN] * 8,
                                ["JP", "JP", "JP", "JP", "JP", "JP", "DE", "FR"]))
    drift = fitted.drift(moved)
    # country: training shares DE .5, FR .25, <other> .25; today DE .125, FR .125, <other> .75
    by_hand = ((0.125 - 0.5) * math.log(0.125 / 0.5) + (0.125 - 0.25) * math.log(0.125 / 0.25)
               + (0.75 - 0.25) * math.log(0.75 / 0.25))
    assert by_hand == pytest.approx(1.155809, abs=1e-6)
    assert drift["account.country"] == pytest.approx(by_hand, rel=1e-12)
    assert drift["account.country"] == pytest.approx(
        population_stability(np.array([0.5, 0.25, 0.25]), np.array([0.125, 0.125, 0.75])))
    assert drift["account.country"] > 0.25
    # every age missing: all of it in the missing bin (training .25); the empty bins count
    # as the floor share 1e-4 on both sides (0) or on today's side only
    floor = 1e-4
    age_by_hand = (1 - 0.25) * math.log(1 / 0.25) + 2 * (floor - 0.375) * math.log(floor / 0.375)
    assert drift["account.f_age_days"] == pytest.approx(age_by_hand, rel=1e-12)
    assert drift["account.f_n_prompts"] == 0.0
    assert drift["ip.asn"] == 0.0


def test_missing_values_go_to_the_missing_bin(fitted: Preprocessor) -> None:
    age = fitted.nodes["account"].numeric[1]
    # bins: missing | < 10 | [10, 20) | [20, 30) | >= 30
    np.testing.assert_array_equal(age.bin_shares(np.array([NAN, 10.0, 30.0, 50.0])),
                                  [0.25, 0.0, 0.25, 0.0, 0.5])
    np.testing.assert_array_equal(age.bin_shares(np.array([NAN, NAN])), [1, 0, 0, 0, 0])
    country = fitted.nodes["account"].categorical[0]
    np.testing.assert_array_equal(
        country.bin_shares(np.array([None, "DE", "XX", NAN], dtype=object)), [0.25, 0.0, 0.75])
    np.testing.assert_array_equal(
        country.codes(np.array([None, "FR", "DE", NAN], dtype=object)), [2, 1, 0, 2])


def test_population_stability_of_a_tiny_case() -> None:
    assert population_stability(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert population_stability(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == \
        pytest.approx(-0.25 * math.log(0.5) + 0.25 * math.log(1.5), rel=1e-12)
    # an empty bin counts as the share 1e-4
    assert population_stability(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == \
        pytest.approx(-0.5 * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4), rel=1e-12)


def _passthrough_snapshot(names: list[str], x: list[list[float]]) -> Snapshot:
    """Accounts with raw columns, IPs only as an already-encoded matrix (like synthetic.py)."""
    snapshot = _snapshot(_accounts(TRAIN_PROMPTS, TRAIN_AGE, TRAIN_COUNTRY))
    del snapshot.raw["ip"]
    snapshot.data["ip"].num_nodes = len(x)
    snapshot.data["ip"].x = torch.tensor(x)
    snapshot.feature_names["ip"] = names
    return snapshot


def test_encoded_node_types_are_matched_by_name() -> None:
    fitted = Preprocessor.fit(_passthrough_snapshot(["a", "b"], [[1.0, 2.0], [3.0, 4.0]]))
    assert fitted.nodes["ip"].encoded and not fitted.nodes["account"].encoded
    assert fitted.feature_names["ip"] == ["a", "b"]
    assert fitted.feature_stats["ip"] == {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    today = _passthrough_snapshot(["c", "b", "a"], [[9.0, 20.0, 10.0], [9.0, 40.0, 30.0]])
    encoded = fitted.transform(today)
    np.testing.assert_array_equal(encoded.data["ip"].x.numpy(), [[10.0, 20.0], [30.0, 40.0]])
    assert encoded.feature_names["ip"] == ["a", "b"]
    # same values as in training: no drift
    assert fitted.drift(_passthrough_snapshot(["b", "a"], [[2.0, 1.0], [4.0, 3.0]]))["ip.a"] == 0.0
    without_b = _passthrough_snapshot(["a", "c"], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(InputError, match=r"ip features \['b'\] are missing"):
        fitted.transform(without_b)
    with pytest.raises(InputError, match=r"ip features \['b'\] are missing"):
        fitted.drift(without_b)


def test_snapshot_save_load_round_trips_raw_columns_and_encoding(
        fitted: Preprocessor, train_snapshot: Snapshot, tmp_path: Path) -> None:
    encoded = fitted.transform(train_snapshot)
    loaded = Snapshot.load(encoded.save(tmp_path / "snap"))
    assert loaded.encoding == fitted.digest
    assert sorted(loaded.raw) == ["account", "ip", "payment"]
    account = loaded.raw["account"]
    assert list(account.numeric) == ["f_n_prompts", "f_age_days"]
    np.testing.assert_array_equal(account.numeric["f_age_days"], np.array(TRAIN_AGE))  # NaN kept
    assert account.numeric["f_age_days"].dtype == np.float64
    assert list(account.categorical["country"]) == TRAIN_COUNTRY                       # None kept
    assert list(loaded.raw["ip"].categorical["asn"]) == ["64500", "64500", "64501"]
    assert (loaded.raw["payment"].numeric, loaded.raw["payment"].categorical) == ({}, {})
    assert fitted.transform(loaded) is loaded  # its matrices are the model's already
    assert Preprocessor.fit(loaded).digest == fitted.digest
    np.testing.assert_array_equal(fitted.encode("account", loaded),
                                  fitted.encode("account", train_snapshot))
    # a snapshot saved before raw columns existed loads without them
    plain = Snapshot.load(train_snapshot.__class__(
        data=train_snapshot.data, id_maps=train_snapshot.id_maps,
        feature_names=train_snapshot.feature_names, feature_stats={},
        content_hash="old").save(tmp_path / "old"))
    assert (plain.raw, plain.encoding) == ({}, None)


def test_fit_refuses_a_categorical_without_vocabulary_size_and_an_export_without_raw(
        train_snapshot: Snapshot) -> None:
    train_snapshot.meta["schema"]["nodes"]["account"]["categorical"] = {}
    with pytest.raises(InputError, match=r"account properties \['country'\] are categorical "
                                         "but have no vocabulary size"):
        Preprocessor.fit(train_snapshot)
    old_export = Snapshot(train_snapshot.data, train_snapshot.id_maps, {}, {}, "old",
                          meta={"schema": {}})
    with pytest.raises(InputError, match="has no raw feature columns .* export it again"):
        Preprocessor.fit(old_export)


def test_a_nan_category_is_saved_as_missing(tmp_path: Path, train_snapshot: Snapshot) -> None:
    train_snapshot.raw["account"].categorical["country"][0] = float("nan")
    loaded = Snapshot.load(train_snapshot.save(tmp_path / "snap"))
    assert loaded.raw["account"].categorical["country"][0] is None
