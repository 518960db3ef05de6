"""``IdIndex``: the lookup table and the binary-search fallback map ids to the same rows."""

from __future__ import annotations

import numpy as np

from sybilgnn.export.fetch import IdIndex


def _expected(internal_ids: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    row_of = {int(i): row for row, i in enumerate(internal_ids)}
    found = np.array([int(q) in row_of for q in queries])
    rows = np.array([row_of.get(int(q), -1) for q in queries])
    return rows, found


def test_dense_ids_use_the_table_and_map_exactly() -> None:
    rng = np.random.default_rng(3)
    internal_ids = rng.permutation(np.arange(0, 3000, 3))  # rows in key order, not id order
    queries = np.concatenate([internal_ids, [-5, -1, 1, 2, 2999, 3000, 10**12]])
    index = IdIndex(internal_ids)
    assert index.table is not None
    rows, found = index.rows(queries)
    expected_rows, expected_found = _expected(internal_ids, queries)
    assert found.tolist() == expected_found.tolist()
    assert rows[found].tolist() == expected_rows[expected_found].tolist()
    assert found.sum() == internal_ids.size


def test_sparse_ids_fall_back_to_binary_search_with_the_same_answers() -> None:
    internal_ids = np.array([10**9, 5, 7 * 10**8, 42])
    queries = np.array([42, 5, 6, 10**9, 7 * 10**8, -3, 10**10])
    index = IdIndex(internal_ids)
    assert index.table is None  # 10^9 spread over 4 ids: no table of that size
    rows, found = index.rows(queries)
    assert found.tolist() == [True, True, False, True, True, False, False]
    assert rows[found].tolist() == [3, 1, 0, 2]


def test_an_empty_index_finds_nothing() -> None:
    rows, found = IdIndex(np.empty(0, dtype=np.int64)).rows(np.array([0, 1]))
    assert found.tolist() == [False, False] and rows.tolist() == [0, 0]
