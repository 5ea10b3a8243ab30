#!/usr/bin/env bash
# Install what pacsbox's differential test suites need on a Debian/Ubuntu machine:
#   - the real Orthanc (Debian package `orthanc`, /usr/sbin/Orthanc), used as the reference server;
#   - dcmtk (Debian package `dcmtk`, /usr/bin/storescu, /usr/bin/dcmdump, ...);
#   - the Orthanc DICOMweb plugin (Debian package `orthanc-dicomweb`), the reference of the DICOMweb face;
#   - Orthanc's sample worklist plugin (shipped in the `orthanc` package itself), the reference of the worklist SCP.
#
# Idempotent: installs only what is missing, runs `apt-get update` only when something must be
# installed, never installs recommends.  The Debian `orthanc` service is never left running (the
# tests start their own Orthanc processes on free loopback ports).  Works as root, or through sudo.
#
# Usage: bash scripts/install-test-deps.sh
set -euo pipefail

ORTHANC_BIN=/usr/sbin/Orthanc
STORESCU_BIN=/usr/bin/storescu
DICOMWEB_PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
WORKLIST_PLUGIN=/usr/share/orthanc/plugins/libModalityWorklists.so

die() {
    echo "install-test-deps: $*" >&2
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

missing=()
[ -x "$ORTHANC_BIN" ] && [ -f "$WORKLIST_PLUGIN" ] || missing+=(orthanc)
[ -x "$STORESCU_BIN" ] || missing+=(dcmtk)
[ -f "$DICOMWEB_PLUGIN" ] || missing+=(orthanc-dicomweb)

if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get is not available: install ${missing[*]} by hand (need $ORTHANC_BIN and $STORESCU_BIN)"
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        die "must run as root (or have sudo) to install ${missing[*]}"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    [ -x "$ORTHANC_BIN" ] || die "orthanc was installed but $ORTHANC_BIN is missing"
    [ -x "$STORESCU_BIN" ] || die "dcmtk was installed but $STORESCU_BIN is missing"
    [ -f "$DICOMWEB_PLUGIN" ] || die "orthanc-dicomweb was installed but $DICOMWEB_PLUGIN is missing"
    [ -f "$WORKLIST_PLUGIN" ] || die "orthanc was installed but its worklist plugin $WORKLIST_PLUGIN is missing"
    action="installed ${missing[*]}"
else
    action="nothing to install: orthanc ($ORTHANC_BIN), dcmtk ($STORESCU_BIN) and orthanc-dicomweb ($DICOMWEB_PLUGIN) already present"
fi

# Make sure the Debian orthanc service is not running.  Only the service's own process is touched
# (systemd unit, or the PID in the init script's pidfile): Orthanc processes started by test suites
# must survive.  Never fail here (no systemd in containers, no permission, ...).
stopped=""
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet orthanc 2>/dev/null; then
        if as_root systemctl stop orthanc >/dev/null 2>&1; then
            stopped="; stopped the orthanc service"
        else
            stopped="; WARNING: could not stop the orthanc service"
        fi
    fi
fi
# A process is gone once /proc/PID disappears or it is a zombie (waiting for its parent to reap it).
alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
pidfile=/run/orthanc.pid
if [ -z "$stopped" ] && [ -r "$pidfile" ]; then
    pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
    cmd="$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "${cmd%% *}" = "$ORTHANC_BIN" ]; then
        as_root kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then as_root kill -KILL "$pid" 2>/dev/null || true; fi
        as_root rm -f "$pidfile" 2>/dev/null || true
        stopped="; stopped the orthanc service (pid $pid)"
    fi
fi

echo "install-test-deps: ${action}${stopped}"
