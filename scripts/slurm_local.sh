#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (loopback only), for testing
# `marshall run --cluster slurm` and `pytest -m slurm`. Needs root (SlurmUser=root)
# and Debian's slurm-wlm + munge (`--install` installs them with apt-get).
#
#   scripts/slurm_local.sh [--install] start   # write config, start munged/slurmctld/slurmd,
#                                              # wait until the node is idle
#   scripts/slurm_local.sh status              # daemons and sinfo
#   scripts/slurm_local.sh stop                # cancel jobs, stop the daemons
#   scripts/slurm_local.sh env                 # print `export SLURM_CONF=...`
#
# Everything (config, munge key and socket, state, spool, logs) lives in
# $SLURM_LOCAL_DIR (default /tmp/marshall-slurm). SLURM clients find it through
# SLURM_CONF (eval "$(scripts/slurm_local.sh env)") and, unless SLURM_LOCAL_ETC=0, through
# a symlink /etc/slurm/slurm.conf -> $SLURM_LOCAL_DIR/slurm.conf made only where no
# slurm.conf is there (removed again by stop): Snakemake's SLURM jobstep executor drops
# SLURM_CONF from the environment of its `srun` inside jobs, so jobs need the default path.
# Settings: SLURM_LOCAL_PARTITION (debug), SLURM_LOCAL_PORT (6817; slurmd uses +1),
# SLURM_LOCAL_WAIT (seconds to wait for an idle node, 60). Starting and stopping are
# idempotent.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/marshall-slurm}
PART=${SLURM_LOCAL_PARTITION:-debug}
PORT=${SLURM_LOCAL_PORT:-6817}
WAIT=${SLURM_LOCAL_WAIT:-60}
CONF=$DIR/slurm.conf
SOCK=$DIR/munge/munge.socket
ETC=/etc/slurm/slurm.conf
NODE=$(hostname -s)
export SLURM_CONF=$CONF

die() { echo "slurm_local: $*" >&2; exit 1; }
log() { echo "slurm_local: $*" >&2; }

alive() {  # alive PIDFILE: the process named in PIDFILE runs
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_idle() {
    timeout 10 sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'
}

install() {
    [[ $(id -u) -eq 0 ]] || die "--install needs root"
    DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
}

write_config() {
    mkdir -p "$DIR"/{munge,key,state,spool,log}
    chmod 755 "$DIR" "$DIR/munge"
    chmod 700 "$DIR/key"
    if [[ ! -s $DIR/key/munge.key ]]; then
        head -c 1024 /dev/urandom > "$DIR/key/munge.key"
        chmod 400 "$DIR/key/munge.key"
    fi
    local cpus mem
    cpus=$(nproc)
    # RealMemory: what slurmd detects, less 10% (slurmd drains a node that reports less)
    mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mem=$(( ${mem:-2048} * 9 / 10 ))
    cat > "$CONF.tmp" <<EOF
# written by scripts/slurm_local.sh: a one-node cluster on loopback
ClusterName=marshall
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PART Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    if ! cmp -s "$CONF.tmp" "$CONF"; then mv "$CONF.tmp" "$CONF"; else rm -f "$CONF.tmp"; fi
}

link_etc() {
    if [[ ${SLURM_LOCAL_ETC:-1} != 0 && ! -e $ETC && ! -L $ETC ]]; then
        mkdir -p "$(dirname "$ETC")" && ln -s "$CONF" "$ETC" && log "linked $ETC -> $CONF"
    fi
}

unlink_etc() {
    if [[ -L $ETC && $(readlink "$ETC") == "$CONF" ]]; then rm -f "$ETC"; log "removed $ETC"; fi
}

start() {
    [[ $(id -u) -eq 0 ]] || die "needs root (SlurmUser=root)"
    for b in munged slurmctld slurmd sinfo sbatch; do
        command -v "$b" >/dev/null || die "$b not found: run with --install (apt-get install slurm-wlm munge)"
    done
    if alive "$DIR/munge/munged.pid" && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" \
        && node_idle; then
        link_etc
        log "already running ($CONF)"; return 0
    fi
    write_config
    link_etc
    if ! alive "$DIR/munge/munged.pid"; then
        munged --force --key-file="$DIR/key/munge.key" --socket="$SOCK" \
            --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
            --seed-file="$DIR/munge/munged.seed"
    fi
    for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
    munge -S "$SOCK" -n </dev/null | unmunge -S "$SOCK" >/dev/null \
        || die "munge does not work; see $DIR/log/munged.log"
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" \
        || die "slurmctld failed; see $DIR/log/slurmctld.log"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N "$NODE" \
        || die "slurmd failed; see $DIR/log/slurmd.log"
    local t0=$SECONDS
    until node_idle; do
        if (( SECONDS - t0 > WAIT )); then
            sinfo -N -l >&2 || true
            die "node $NODE not idle after ${WAIT}s; see $DIR/log/"
        fi
        # a node left down/drained by an earlier run: bring it back
        timeout 10 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    log "up in $((SECONDS - t0))s: partition $PART, node $NODE; export SLURM_CONF=$CONF"
}

stop() {
    if alive "$DIR/slurmctld.pid"; then
        local ids
        ids=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
        if [[ -n $ids ]]; then
            log "cancelling jobs: $(echo $ids)"
            timeout 10 scancel $ids || true
            for _ in $(seq 30); do
                [[ -z $(timeout 10 squeue -h -o '%i' 2>/dev/null) ]] && break
                sleep 1
            done
        fi
    fi
    local f pid
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        if alive "$DIR/$f"; then
            pid=$(cat "$DIR/$f")
            kill "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            log "stopped ${f%.pid} ($pid)"
        fi
        rm -f "$DIR/$f"
    done
    unlink_etc
}

status() {
    local f rc=0
    for f in munge/munged.pid slurmctld.pid slurmd.pid; do
        if alive "$DIR/$f"; then echo "${f##*/}: running ($(cat "$DIR/$f"))"
        else echo "${f##*/}: stopped"; rc=1; fi
    done
    if [[ $rc -eq 0 ]]; then timeout 10 sinfo || rc=1; fi
    return $rc
}

cmd=""
do_install=0
for a in "$@"; do
    case $a in
        --install) do_install=1 ;;
        start|stop|status|restart|env) cmd=$a ;;
        *) die "usage: $0 [--install] start|stop|status|restart|env" ;;
    esac
done
[[ $do_install -eq 1 ]] && install
case $cmd in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    "") [[ $do_install -eq 1 ]] || die "usage: $0 [--install] start|stop|status|restart|env" ;;
esac
