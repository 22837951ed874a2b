#!/usr/bin/env bash
# README command 2: install what the tests need (PostgreSQL, Chromium, fonts from Debian;
# the locked Python packages), then run lint, type checks, the import contracts and the
# whole test suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

echo "== installing system packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    postgresql postgresql-contrib chromium chromium-driver fonts-noto-cjk >/dev/null

echo "== installing Python packages (locked)"
bash scripts/bootstrap.sh
export PATH="$ROOT/.venv/bin:$PATH"

echo "== starting a throw-away PostgreSQL on 127.0.0.1"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGDATA="$(mktemp -d /tmp/yifang-pg.XXXXXX)"
PGPORT="${YIFANG_TEST_PGPORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
chown -R postgres:postgres "$PGDATA" 2>/dev/null || true
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else "$@"; fi; }
run_pg "$PGBIN/initdb -D $PGDATA -U postgres -A trust -E UTF8 --locale=C.UTF-8" >/dev/null
run_pg "$PGBIN/pg_ctl -D $PGDATA -o '-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off' -l $PGDATA/log -w start" >/dev/null || { cat "$PGDATA/log"; exit 1; }
trap 'run_pg "$PGBIN/pg_ctl -D $PGDATA -m immediate stop" >/dev/null 2>&1 || true' EXIT
export YIFANG_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"

status=0
echo "== ruff"; ruff check yifang tests benchmarks || status=1
ruff format --check yifang tests benchmarks || status=1
echo "== mypy"; mypy yifang || status=1
echo "== import contracts"; lint-imports || status=1

run_pytest() {
    # pytest exits 5 when it collects nothing; that is not a failure here.
    local rc=0
    python -m pytest "$@" || rc=$?
    if [ "$rc" = 5 ]; then rc=0; fi
    return "$rc"
}
echo "== tests on SQLite"
YIFANG_TEST_DB=sqlite run_pytest -n 2 -p no:cacheprovider || status=1
echo "== tests on PostgreSQL"
YIFANG_TEST_DB=postgres run_pytest -n 2 -p no:cacheprovider -m "not browser" || status=1
exit "$status"
