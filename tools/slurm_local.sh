#!/usr/bin/env bash
# A one-node Slurm on this machine for the job-array tests (tests/e2e/slurm_slow_test.cc): munged, slurmctld
# and slurmd from Debian's packages (tools/setup.sh installs them), all state, spool, sockets and logs in one
# temporary folder, the node's real CPU count and memory, SlurmUser the current user. Stopped by their pids.
# Usage: eval "$(tools/slurm_local.sh start [DIR])"   prints `export SLURM_CONF=DIR/slurm.conf`
#        tools/slurm_local.sh stop [DIR]               stops the three daemons and removes DIR
# DIR defaults to ${TMPDIR:-/tmp}/nlpf_slurm. Clients (sbatch, squeue, sacct, nlpf) find it via SLURM_CONF.
set -euo pipefail

command=${1:-}
dir=${2:-${TMPDIR:-/tmp}/nlpf_slurm}

stop() {
  for daemon in slurmd slurmctld munged; do
    local pidfile="$dir/$daemon.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case "$command" in
  start) ;;
  stop)
    stop
    rm -rf "$dir"
    exit 0
    ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac

for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "slurm_local: $tool is missing (run tools/setup.sh)" >&2
    exit 1
  }
done
[ -d "$dir" ] && stop
rm -rf "$dir"
mkdir -p "$dir"/{state,spool,log,munge}
chmod 700 "$dir/munge"
user=$(id -un)
host=$(hostname -s)
cpus=$(nproc)
memory_mb=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)

# munge: its own key and socket, so that a system munged (if any) is left alone.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
/usr/sbin/munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" \
  --force

cat >"$dir/slurm.conf" <<EOF
ClusterName=nlpf-local
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmctldPort=$((6817 + RANDOM % 1000 * 2))
SlurmdPort=$((7817 + RANDOM % 1000 * 2))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=1
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -i -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_local: the node did not become idle in 20 s; logs in $dir/log:" >&2
tail -n 5 "$dir"/log/*.log >&2 || true
exit 1
