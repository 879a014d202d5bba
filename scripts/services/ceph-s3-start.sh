#!/usr/bin/env bash
# Starts a throw-away single-node Ceph (1 mon, 1 OSD, no mgr) with radosgw, a real S3 API on
# 127.0.0.1, as root, without systemd, with every file under DATA_DIR. test/support/s3.ts runs it
# for the S3 blob store's tests, on ports it found free; it works by hand as well.
# Adapted from the team's shared services/ceph-s3-start.sh (/work/shared/services on the
# development machines): memstore by default (starts in 2-4 s), and no uuidgen or curl needed.
#
# usage: ceph-s3-start.sh DATA_DIR
# env:   RGW_PORT (15300)  MON_PORT (15310)  OSD_PORT_MIN/MAX (15320/15349)
#        CEPH_OBJECTSTORE (memstore | bluestore; default memstore, which keeps objects in RAM)
#        CEPH_OSD_SIZE_GB (2: RAM cap for memstore / sparse file for bluestore)
#        S3_ACCESS_KEY / S3_SECRET_KEY (fixed defaults below)
#        START_TIMEOUT (seconds, default 180)
# needs: apt-get install --no-install-recommends ceph-mon ceph-osd radosgw
# prints: S3_ENDPOINT=, S3_ACCESS_KEY=, S3_SECRET_KEY=, S3_REGION=, CEPH_CONF=, RGW_PID= (eval-able)
# stop:  ceph-s3-stop.sh DATA_DIR [--purge]
set -euo pipefail

D=${1:?usage: ceph-s3-start.sh DATA_DIR}
RGW_PORT=${RGW_PORT:-15300}
MON_PORT=${MON_PORT:-15310}
OSD_PORT_MIN=${OSD_PORT_MIN:-15320}
OSD_PORT_MAX=${OSD_PORT_MAX:-15349}
OBJECTSTORE=${CEPH_OBJECTSTORE:-memstore}
OSD_SIZE_GB=${CEPH_OSD_SIZE_GB:-2}
ACCESS_KEY=${S3_ACCESS_KEY:-BERTHTESTACCESSKEY01}
SECRET_KEY=${S3_SECRET_KEY:-berthtestsecretkey00000000000000000000001}
TIMEOUT=${START_TIMEOUT:-180}

case "$D" in /*) ;; *) D=$PWD/$D ;; esac
[ "$D" != / ] || { echo "refusing DATA_DIR=/" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph awk; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw)" >&2; exit 3; }
done
if [ -e "$D/run/mon.a.pid" ] && kill -0 "$(cat "$D/run/mon.a.pid")" 2>/dev/null; then
  echo "already running in $D (run ceph-s3-stop.sh first)" >&2; exit 1
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$RGW_PORT" "$MON_PORT"; do
  port_busy "$p" && { echo "127.0.0.1:$p is already in use (another instance?); set RGW_PORT/MON_PORT" >&2; exit 1; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s.%N)
ts() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[%6.1fs] %s\n", b-a, m}' >&2; }
wait_for() { # wait_for <desc> <daemon name, or -> <cmd...>: until cmd succeeds, while the daemon lives
  local desc=$1 daemon=$2; shift 2; local end=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then echo "timeout waiting for $desc; logs in $D/log" >&2; exit 1; fi
    # a daemon that died (its port taken meanwhile, say) fails the start now, not at the timeout
    if [ "$daemon" != - ] && [ -s "$D/run/$daemon.pid" ] && ! kill -0 "$(cat "$D/run/$daemon.pid")" 2>/dev/null; then
      echo "$daemon exited while waiting for $desc; logs in $D/log" >&2; exit 1
    fi
    sleep 0.2
  done
}
uuid() { cat /proc/sys/kernel/random/uuid; }

if [ -e "$D" ] && [ -n "$(ls -A "$D" 2>/dev/null)" ] && [ ! -e "$D/.ceph-throwaway" ]; then
  echo "$D exists, is not empty and was not made by this script; refusing to wipe it" >&2; exit 1
fi
rm -rf "$D"
mkdir -p "$D"/{run,log,mon,osd,crash,rgw}
touch "$D/.ceph-throwaway"
# on any failure, stop whatever was already started (by PID file); logs stay in $D/log
trap 'rc=$?; if [ $rc != 0 ]; then echo "start failed (rc=$rc); see $D/log" >&2; "$HERE/ceph-s3-stop.sh" "$D" >&2; fi' EXIT
CONF=$D/ceph.conf
FSID=$(uuid)

cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
# a port taken meanwhile fails the start in seconds rather than after 3 x 5 s of retries
ms bind retry count = 2
ms bind retry delay = 1
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults ms_mon_client_mode=secure, which cannot work with auth none
ms mon client mode = crc
keyring = $D/keyring
run dir = $D/run
crash dir = $D/crash
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.\$pid.asok
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false

[mon]
mon data = $D/mon/\$cluster-\$id
# commit osdmap changes every 0.1 s instead of 1 s: rgw creates ~8 pools on
# first start and each pool costs two osdmap epochs
paxos propose interval = 0.1
admin socket = $D/run/\$name.asok

[osd]
osd data = $D/osd/\$cluster-\$id
admin socket = $D/run/\$name.asok
osd objectstore = $OBJECTSTORE
osd memory target = 1073741824
bluestore block create = true
bluestore block size = $(( OSD_SIZE_GB * 1024 * 1024 * 1024 ))
bluestore fsck on mount = false
memstore device bytes = $(( OSD_SIZE_GB * 1024 * 1024 * 1024 ))

[client.rgw]
admin socket = $D/run/\$name.asok
rgw data = $D/rgw
# tcp_nodelay: without it every answer with a body waits ~40 ms (Nagle against delayed ACKs)
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw thread pool size = 64
rgw init timeout = $TIMEOUT
# garbage-collect deleted multipart/tail data after 1 min instead of 2 h
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF

# --- mon ---
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" --keyring "$D/keyring" 2>>"$D/log/daemon-stderr.log"
ceph-mon -c "$CONF" -i a 2>>"$D/log/daemon-stderr.log"  # daemonizes, writes $D/run/mon.a.pid
C() { ceph -c "$CONF" --connect-timeout 10 "$@"; }
wait_for "mon" mon.a C mon stat
ts "mon up"

# --- osd ---
OSD_UUID=$(uuid)
OSD_ID=$(C osd new "$OSD_UUID")
mkdir -p "$D/osd/ceph-$OSD_ID"
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.log" 2>&1
ceph-osd -c "$CONF" -i "$OSD_ID" 2>>"$D/log/daemon-stderr.log"  # daemonizes, writes $D/run/osd.N.pid
osd_up() { C osd stat -f json | grep -q '"num_up_osds":[1-9]'; }
wait_for "osd up" "osd.$OSD_ID" osd_up
ts "osd.$OSD_ID up"

# --- radosgw ---
# radosgw only returns once it has initialised (pools created) or failed
radosgw -c "$CONF" -n client.rgw 2>>"$D/log/daemon-stderr.log"  # daemonizes, writes $D/run/client.rgw.pid
rgw_ok() { # the process lives and GET / answers 200 (in a subshell: a failed connect ends only it)
  [ -s "$D/run/client.rgw.pid" ] && kill -0 "$(cat "$D/run/client.rgw.pid")" || return 1
  (
    exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT"
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 5 _ status _ <&3
    [ "$status" = 200 ]
  )
}
wait_for "radosgw on :$RGW_PORT" client.rgw rgw_ok
ts "radosgw answering"

radosgw-admin -c "$CONF" user create --uid=berth --display-name="Berth tests" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$D/log/user-create.json"
ts "S3 user created"

cat <<OUT
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
S3_REGION=us-east-1
CEPH_CONF=$CONF
RGW_PID=$(cat "$D/run/client.rgw.pid")
OUT
