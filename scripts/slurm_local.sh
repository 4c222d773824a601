#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, to run `hydra/launcher=slurm` for real.
#
#   scripts/slurm_local.sh start    install slurm-wlm and munge (apt-get) if missing, write a
#                                   slurm.conf (controller and node daemon on localhost, partition
#                                   `cpu` with this machine's cores, no GPUs), start munged (unless
#                                   one already answers), slurmctld and slurmd, wait for the node
#   scripts/slurm_local.sh stop     stop the daemons this script started (pid files), nothing else
#   scripts/slurm_local.sh status   sinfo of the local cluster
#
# Needs root (apt-get, slurmd) on Debian / Ubuntu. Everything it writes but the packages lives in
# $SLURM_LOCAL_DIR (default /tmp/slurm-local): slurm.conf, logs, state, pid files. Slurm's
# commands find the cluster through SLURM_CONF: after `start`, run
#   export SLURM_CONF=${SLURM_LOCAL_DIR:-/tmp/slurm-local}/slurm.conf
# then e.g. python -m elite_exp -m data=digits hydra/launcher=slurm hydra.launcher.gpus_per_node=null \
#   hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=1 normal_class=0,1,2,3
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/slurm-local}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)

die() { echo "slurm_local: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root"
    command -v apt-get >/dev/null || die "no apt-get: install Slurm and munge with this system's package manager"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
}

write_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # slurmd drains a node that has less
    mkdir -p "$DIR/state" "$DIR/spool"
    cat > "$CONF" <<EOF
# written by scripts/slurm_local.sh: one node, controller and node daemon on localhost
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged already answers: use it, and leave it running on stop
    fi
    [ -s /etc/munge/munge.key ] || die "no /etc/munge/munge.key (the munge package creates it)"
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file /run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"
}

wait_for_node() {
    local i
    for i in $(seq 60); do
        if SLURM_CONF=$CONF sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            return
        fi
        sleep 1
    done
    die "node $NODE did not come up in 60 s; see $DIR/slurmctld.log and $DIR/slurmd.log"
}

start() {
    [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their users)"
    [ -e "$DIR/slurmctld.pid" ] && die "already started from $DIR (scripts/slurm_local.sh stop first)"
    install_packages
    write_conf
    start_munge
    slurmctld -f "$CONF" -i
    slurmd -f "$CONF"
    wait_for_node
    SLURM_CONF=$CONF sinfo
    echo "export SLURM_CONF=$CONF"
}

stop() {
    local name pid i
    for name in slurmd slurmctld munged; do
        [ -e "$DIR/$name.pid" ] || continue
        pid=$(cat "$DIR/$name.pid")
        if kill "$pid" 2>/dev/null; then
            for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
        rm -f "$DIR/$name.pid"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$CONF sinfo ;;
    *) die "usage: $0 start|stop|status (got '${1:-}')" ;;
esac
