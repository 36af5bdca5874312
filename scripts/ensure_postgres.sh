#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1 for the multi-machine search test (tests/hpsearch, lecture H7).
#
# Idempotent and fast when all is there: installs PostgreSQL (the Debian package) when missing, keeps a
# private cluster in $BABYSIT_PG_DIR (default /tmp/babysit-postgres) listening on 127.0.0.1:$BABYSIT_PG_PORT
# only (default 54329; no other interface, no system cluster touched), starts it when it is down, and
# creates the role and database of the test URL. It exports nothing: the tests read
# BABYSIT_TEST_POSTGRES_URL, default postgresql://babysit:babysit@127.0.0.1:54329/babysit_test, and, for the
# test that no password leaks (a password no other string contains), a second role and database:
# BABYSIT_TEST_POSTGRES_SECRET_URL, default postgresql://babysit_secret:pg-S3cret-Zq9@127.0.0.1:54329/babysit_secret.
# Where PostgreSQL cannot be installed (no root, no apt-get), it warns and exits 0 so that `make test`
# runs the rest; under CI (CI=true) it fails instead, and so does the PostgreSQL test.
set -euo pipefail

PORT=${BABYSIT_PG_PORT:-54329}
DIR=${BABYSIT_PG_DIR:-/tmp/babysit-postgres}
ROLE=babysit
PASSWORD=babysit
DB=babysit_test
SECRET_ROLE=babysit_secret
SECRET_PASSWORD=pg-S3cret-Zq9
SECRET_DB=babysit_secret

give_up() {
    echo "ensure_postgres: $1" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    echo "ensure_postgres: the PostgreSQL search test will be skipped (it fails under CI=true)." >&2
    exit 0
}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(bindir)" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "ensure_postgres: installing PostgreSQL (apt-get install postgresql)" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        give_up "PostgreSQL is not installed and cannot be installed here (needs root and apt-get)."
    fi
fi
BIN=$(bindir)
[ -n "$BIN" ] || give_up "PostgreSQL's binaries are missing after the installation."

# initdb and the server refuse to run as root: run them as the postgres user then
if [ "$(id -u)" = "0" ]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER=$(id -un)
    as_owner() { "$@"; }
fi

if [ ! -s "$DIR/PG_VERSION" ]; then
    mkdir -p "$DIR"
    chown "$OWNER" "$DIR"
    chmod 700 "$DIR"
    as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

if ! as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR -c fsync=off -c max_connections=200" \
        >/dev/null || give_up "the server did not start; see $DIR/server.log"
fi

psql_admin() { as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$SECRET_ROLE'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $SECRET_ROLE LOGIN PASSWORD '$SECRET_PASSWORD'" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$SECRET_DB'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $SECRET_DB OWNER $SECRET_ROLE" >/dev/null
fi
echo "ensure_postgres: postgresql://$ROLE:***@127.0.0.1:$PORT/$DB is up" >&2
