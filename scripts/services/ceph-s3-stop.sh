#!/usr/bin/env bash
# Stops the daemons ceph-s3-start.sh started in DATA_DIR, by PID file only, and with --purge
# removes DATA_DIR. Adapted from the team's shared services/ceph-s3-stop.sh.
# Without --purge the daemons get SIGTERM one after the other (rgw, osd, mon), each waited for,
# so that they shut down cleanly; with --purge the data is thrown away anyway, so they get SIGKILL.
# usage: ceph-s3-stop.sh DATA_DIR [--purge]
set -uo pipefail
D=${1:?usage: ceph-s3-stop.sh DATA_DIR [--purge]}
PURGE=${2:-}
case "$D" in /*) ;; *) D=$PWD/$D ;; esac
shopt -s nullglob
SIGNAL=TERM
[ "$PURGE" = --purge ] && SIGNAL=KILL
# The daemons were reparented to PID 1 when they daemonized, which may take a second or two to
# reap them: a zombie counts as gone.
alive() { kill -0 "$1" 2>/dev/null && ! awk '$3 == "Z" { found = 1 } END { exit !found }' "/proc/$1/stat" 2>/dev/null; }
stop_pid() { # stop_pid PID: signal it, wait up to 10 s, then SIGKILL
  local pid=$1
  kill -"$SIGNAL" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do alive "$pid" || return 0; sleep 0.05; done
  echo "pid $pid still alive, SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 1 100); do alive "$pid" || return 0; sleep 0.05; done
}
n=0
# stop in reverse order: rgw, osd, mon
for f in "$D"/run/client.rgw.pid "$D"/run/osd.*.pid "$D"/run/mon.*.pid; do
  pid=$(cat "$f" 2>/dev/null) || continue
  # only kill it if it is really one of ours (its command line names our conf)
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$D/ceph.conf"; then
    stop_pid "$pid"; n=$((n + 1))
  fi
  rm -f "$f"
done
echo "stopped $n process(es)"
if [ "$PURGE" = --purge ] && [ -e "$D/.ceph-throwaway" ]; then rm -rf "$D" && echo "removed $D"; fi
exit 0
