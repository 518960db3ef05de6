#!/usr/bin/env bash
# Set up everything sybilgnn needs on a fresh machine; re-runs are fast (stamps and caches).
#   - a Java 17 JDK and Maven (apt-get, only when missing and running as root); the JDK's
#     javac builds sybilgnn's Neo4j procedures
#   - PostgreSQL's server binaries (apt-get, only when missing and running as root): the
#     tests start their own server for shared Optuna studies
#   - .venv with the package, its test and postgres extras (pip's cache serves torch again)
#   - the Neo4j server and Browser jars (Maven's ~/.m2 cache serves them again)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if [ "$(id -u)" = 0 ]; then
  command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
else
  command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
  command -v javac >/dev/null 2>&1 || echo "[setup] warning: no JDK (javac): Neo4j starts" \
    "without sybilgnn's procedures and export/write-back use plain Cypher (slower);" \
    "sudo apt-get install openjdk-17-jdk-headless to get them" >&2
fi
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# PostgreSQL server binaries: the tests start their own server for shared Optuna studies
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    need_apt+=(postgresql)
  else
    echo "[setup] warning: no PostgreSQL server (initdb): the tests of shared studies on" \
      "PostgreSQL fail; sudo apt-get install postgresql" >&2
  fi
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
  else
    echo "error: missing ${need_apt[*]}; install them (sudo apt-get install ${need_apt[*]})" >&2
    exit 2
  fi
fi

PY=python3.11
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.sybilgnn-deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing sybilgnn and its dependencies into .venv (first time: several minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,postgres]'
  rm -f .venv/.sybilgnn-deps-*
  touch "$stamp"
fi
echo "[setup] resolving Neo4j jars through Maven (cached after the first time)"
.venv/bin/sybilgnn neo4j install
