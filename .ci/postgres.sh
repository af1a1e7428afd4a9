#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store tests.
#
# Usage:  eval "$(bash .ci/postgres.sh)"; export AISTACK_TEST_POSTGRES_URL
#
# Prints exactly one line on stdout:  AISTACK_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:PORT/postgres
# Everything else goes to stderr. Installs the Debian `postgresql` package when no server binaries exist.
# Idempotent: a second run finds the cluster already running and prints the same URL.
# Env: AISTACK_PG_DIR (data dir, default /tmp/aistack-ci-pg), AISTACK_PG_PORT (first port to try, 54329).
set -euo pipefail

# Keep stdout clean for `eval`: fd 3 is the real stdout, everything else goes to stderr.
exec 3>&1 1>&2

# Not $TMPDIR: the postgres user must be able to reach the directory.
DATA="${AISTACK_PG_DIR:-/tmp/aistack-ci-pg}"
FIRST_PORT="${AISTACK_PG_PORT:-54329}"

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bindir() {
    # Newest installed major version wins.
    local initdb
    initdb="$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    [[ -n "$initdb" ]] && dirname "$initdb"
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
    [[ $EUID -eq 0 ]] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; run as root or: apt-get install postgresql"
    echo "postgres.sh: installing postgresql (apt-get)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends postgresql
    BINDIR="$(find_bindir || true)"
    [[ -n "$BINDIR" ]] || die "apt-get installed postgresql but no initdb found under /usr/lib/postgresql/*/bin"
fi

# initdb and postgres refuse to run as root: run them as the `postgres` user when we are root.
if [[ $EUID -eq 0 ]]; then
    if ! id -u postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    RUNAS=(runuser -u postgres --)
    OWNER=postgres
else
    RUNAS=()
    OWNER="$(id -un)"
fi
pg() { "${RUNAS[@]}" "$BINDIR/$1" "${@:2}"; }

port_in_use() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url_for() { echo "AISTACK_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$1/postgres" >&3; }

# Already running from an earlier call: reuse it.
if [[ -f "$DATA/PG_VERSION" ]] && pg pg_ctl -D "$DATA" status >/dev/null 2>&1; then
    PORT="$(sed -n "s/^port = \([0-9]*\).*/\1/p" "$DATA/postgresql.auto.conf" 2>/dev/null | tail -n 1)"
    # It may still be starting up: give it a few seconds before giving up.
    if [[ -n "$PORT" ]] && pg pg_isready -q -t 10 -h 127.0.0.1 -p "$PORT" -U postgres; then
        echo "postgres.sh: reusing running cluster in $DATA on port $PORT"
        url_for "$PORT"
        exit 0
    fi
    die "a server for $DATA seems to run but does not answer on 127.0.0.1:${PORT:-?}; see $DATA/server.log," \
        "or stop it (pg_ctl -D $DATA stop) / remove $DATA and retry"
fi

# A data dir from an older server version (or a half-made one) is useless: start over.
MAJOR="$(basename "$(dirname "$BINDIR")")"  # /usr/lib/postgresql/15/bin -> 15
if [[ -d "$DATA" && "$(cat "$DATA/PG_VERSION" 2>/dev/null || true)" != "$MAJOR" ]]; then
    rm -rf "$DATA"
fi

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    mkdir -p "$DATA"
    chown "$OWNER" "$DATA"
    chmod 700 "$DATA"
    # --no-sync and the settings below trade durability for speed: this cluster is thrown away.
    pg initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
    cat >"$DATA/pg_hba.conf" <<'EOF'
# Throwaway test cluster: trust, loopback and its private socket only.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
EOF
    chown "$OWNER" "$DATA/pg_hba.conf"
fi

PORT="$FIRST_PORT"
while port_in_use "$PORT"; do
    PORT=$((PORT + 1))
    (( PORT < FIRST_PORT + 100 )) || die "no free TCP port in $FIRST_PORT..$((FIRST_PORT + 99)) on 127.0.0.1"
done

cat >"$DATA/postgresql.auto.conf" <<EOF
# Written by .ci/postgres.sh on every start.
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
chown "$OWNER" "$DATA/postgresql.auto.conf"

if ! pg pg_ctl -D "$DATA" -l "$DATA/server.log" -w -t 30 start </dev/null >/dev/null 2>&1 3>&-; then
    tail -n 20 "$DATA/server.log" >&2 || true
    die "PostgreSQL did not start; see $DATA/server.log"
fi
echo "postgres.sh: PostgreSQL $MAJOR running in $DATA on 127.0.0.1:$PORT"
url_for "$PORT"
