#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster on 127.0.0.1 for tests: no systemd, no /etc changes,
# every file under DATA_DIR. test/support/postgres.ts runs it; it works by hand as well.
# Adapted from the team's shared services/postgres-start.sh (/work/shared/services on the
# development machines), with the binaries found for whatever PostgreSQL major is installed.
#
# usage: postgres-start.sh DATA_DIR
# env:   PG_PORT (15400)  PGBIN (the newest /usr/lib/postgresql/*/bin)  PG_OS_USER (postgres, used when run as root)
#        PG_DB / PG_USER / PG_PASSWORD (registry/registry/registry); the superuser `postgres` gets the same password
#        PG_DURABLE=1 keeps fsync on
# prints: DATABASE_URL=..., PGHOST=..., PGPORT=..., PGUSER=..., PGPASSWORD=..., PGDATABASE=..., PGPID=... (eval-able)
set -euo pipefail
D=${1:?usage: postgres-start.sh DATA_DIR}
PORT=${PG_PORT:-15400}
if [ -z "${PGBIN:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PGBIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; }
fi
OS_USER=${PG_OS_USER:-postgres}
DB=${PG_DB:-registry}; APP_USER=${PG_USER:-registry}; APP_PASS=${PG_PASSWORD:-registry}
case "$D" in /*) ;; *) D=$PWD/$D ;; esac
[ "$D" != / ] || { echo "refusing DATA_DIR=/" >&2; exit 1; }
if [ -e "$D" ] && [ -n "$(ls -A "$D" 2>/dev/null)" ] && [ ! -e "$D/.pg-throwaway" ]; then
  echo "$D exists, is not empty and was not made by this script; refusing to wipe it" >&2; exit 1
fi
if [ -e "$D/data/postmaster.pid" ] && kill -0 "$(head -1 "$D/data/postmaster.pid")" 2>/dev/null; then
  echo "already running in $D (run postgres-stop.sh first)" >&2; exit 1
fi
rm -rf "$D"; mkdir -p "$D/sock"; touch "$D/.pg-throwaway"
if [ "$(id -u)" = 0 ]; then
  chown -R "$OS_USER" "$D"
  AS=(runuser -u "$OS_USER" --)           # initdb and postgres refuse to run as root
else
  AS=()
fi
printf '%s\n' "$APP_PASS" >"$D/.pw"; [ "$(id -u)" = 0 ] && chown "$OS_USER" "$D/.pw"; chmod 600 "$D/.pw"
# Local socket: trust; TCP: scram-sha-256 (the superuser `postgres` gets the same password).
"${AS[@]}" "$PGBIN/initdb" -D "$D/data" -U postgres -E UTF8 --locale=C --no-sync \
  --auth-local=trust --auth-host=scram-sha-256 --pwfile="$D/.pw" >"$D/initdb.log" 2>&1 \
  || { cat "$D/initdb.log" >&2; exit 1; }
OPTS="-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$D/sock -c max_connections=200"
[ "${PG_DURABLE:-0}" = 1 ] || OPTS="$OPTS -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
"${AS[@]}" "$PGBIN/pg_ctl" -D "$D/data" -l "$D/postgres.log" -w -t 60 -o "$OPTS" start >/dev/null \
  || { tail -20 "$D/postgres.log" >&2; exit 1; }
"${AS[@]}" "$PGBIN/psql" -h "$D/sock" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
CREATE ROLE "$APP_USER" LOGIN PASSWORD '$APP_PASS';
CREATE DATABASE "$DB" OWNER "$APP_USER";
SQL
cat <<OUT
DATABASE_URL=postgres://$APP_USER:$APP_PASS@127.0.0.1:$PORT/$DB
PGHOST=127.0.0.1
PGPORT=$PORT
PGUSER=$APP_USER
PGPASSWORD=$APP_PASS
PGDATABASE=$DB
PGPID=$(head -1 "$D/data/postmaster.pid")
OUT
