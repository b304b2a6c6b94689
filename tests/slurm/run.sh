#!/usr/bin/env bash
# Run the workflow on a real single-node SLURM cluster started here, and prove it gives the
# same bytes as a local run.
#
# Installs Debian slurm-wlm and munge if needed (root), starts munged, slurmctld and slurmd on
# localhost with a minimal slurm.conf (no cgroups, no accounting), runs the .test configuration
# with profiles/slurm, checks that every model job went through SLURM, compares the manifest
# with the committed expectation, and stops the daemons it started (by PID) on exit.
# Usage: tests/slurm/run.sh   (from anywhere; needs the package installed: pip install -e .)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || pip install -q -e "$root[slurm]"

work=$(mktemp -d /tmp/pnitrial-slurm.XXXXXX)
state="$work/slurm"
mkdir -p "$state/spool" "$state/state" "$work/munge"
pids=()
cleanup() {
  if [ -f "$work/slurm.conf.orig" ]; then mv "$work/slurm.conf.orig" /etc/slurm/slurm.conf; else rm -f /etc/slurm/slurm.conf; fi
  for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$work/munge/munged.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# munge: a throw-away key and socket of our own, so nothing of the host's is touched.
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
host=$(hostname -s)
mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
cat > "$state/slurm.conf" <<EOF
ClusterName=pnitrial
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# Job steps (srun inside a batch job) read the default path, whatever the environment says.
mkdir -p /etc/slurm
[ -f /etc/slurm/slurm.conf ] && cp /etc/slurm/slurm.conf "$work/slurm.conf.orig"
cp "$state/slurm.conf" /etc/slurm/slurm.conf
export SLURM_CONF=/etc/slurm/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 1
done
sinfo

# The site profile with its placeholders filled in for this cluster (no accounting here).
mkdir -p "$work/profile"
sed -e 's/"<partition>"/debug/' -e 's/  slurm_account: "<account>"//' \
  "$root/profiles/slurm/config.yaml" > "$work/profile/config.yaml"
echo "slurm-no-account: true" >> "$work/profile/config.yaml"
echo "slurm-keep-successful-logs: true" >> "$work/profile/config.yaml"
echo "slurm-init-seconds-before-status-checks: 1" >> "$work/profile/config.yaml"

run="$work/run"
mkdir -p "$run"
cp -r "$root/.test/config" "$root/.test/data" "$root/.test/expected" "$run/"
cd "$run"
python -m snakemake -s "$root/Snakefile" --profile "$work/profile" --jobs 4 2>&1 | tee "$work/snakemake.log" | tail -5

# Every model, validation and permutation job must have been a SLURM job; the small ones stay local.
n_models=$(python -c "import yaml; print(len(yaml.safe_load(open('$run/data/dataset.yaml'))['outcomes']))")
n_submitted=$(grep -c "submitted with SLURM jobid" "$work/snakemake.log" || true)
# the main scheduler logs "sched: Allocate JobId=N", the backfill scheduler "_start_job: Started JobId=N"
n_allocated=$(grep -c -E "sched: Allocate JobId=|backfill: _start_job: Started JobId=" "$state/slurmctld.log" || true)
echo "outcomes: $n_models; submitted to SLURM: $n_submitted; allocated by slurmctld: $n_allocated"
n_perm=$(python -c "import yaml; print(int(yaml.safe_load(open('$run/config/config.yaml'))['permutation']['rerandomisations'] > 0))")
n_expected=$((n_models + 1 + n_perm))
[ "$n_submitted" -eq "$n_expected" ] || { echo "expected $n_expected SLURM jobs"; exit 1; }
[ "$n_allocated" -ge "$n_submitted" ] || { echo "slurmctld did not allocate every job"; exit 1; }

cmp results/MANIFEST.sha256 expected/MANIFEST.sha256
echo "SLURM run is byte-identical to the local expectation ($(wc -l < results/MANIFEST.sha256) files)"
