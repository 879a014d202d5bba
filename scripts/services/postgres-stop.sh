#!/usr/bin/env bash
# Stops the cluster postgres-start.sh started in DATA_DIR, by the PID in its postmaster.pid
# only, and with --purge removes DATA_DIR. Adapted from the team's shared
# services/postgres-stop.sh (/work/shared/services on the development machines).
#
# usage: postgres-stop.sh DATA_DIR [--purge]
# env:   PGBIN (the newest /usr/lib/postgresql/*/bin)  PG_OS_USER (postgres, used when run as root)
set -uo pipefail
D=${1:?usage: postgres-stop.sh DATA_DIR [--purge]}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
OS_USER=${PG_OS_USER:-postgres}
PIDF=$D/data/postmaster.pid
if [ -f "$PIDF" ]; then
  pid=$(head -1 "$PIDF")
  if [ "$(id -u)" = 0 ]; then AS=(runuser -u "$OS_USER" --); else AS=(); fi
  # pg_ctl signals exactly the PID in postmaster.pid; failing that, signal that PID ourselves.
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$D/data" -m fast -w -t 30 stop >/dev/null 2>&1 || {
    kill -0 "$pid" 2>/dev/null && kill -INT "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  }
  echo "stopped postgres pid $pid"
else
  echo "not running (no $PIDF)"
fi
if [ "${2:-}" = --purge ]; then
  [ -e "$D/.pg-throwaway" ] || [ ! -e "$D" ] || { echo "$D was not made by postgres-start.sh; not removing it" >&2; exit 1; }
  rm -rf "$D" && echo "removed $D"
fi
exit 0
