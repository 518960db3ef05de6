import pytest

pytestmark = pytest.mark.neo4j


def test_fixture_gives_empty_database(neo4j_driver):
    neo4j_driver.execute_query("CREATE (:Account {account_id: 'a'})")
    records, _, _ = neo4j_driver.execute_query("MATCH (n) RETURN count(n) AS c")
    assert records[0]["c"] == 1
