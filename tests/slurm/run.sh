#!/usr/bin/env bash
# Run the workflow on a real single-node SLURM cluster started here, and prove it gives the
# same bytes as a local run.
#
# Installs Debian slurm-wlm and munge if needed (root), starts munged (throw-away key and socket),
# slurmctld and slurmd on localhost with a minimal slurm.conf of its own in a temp dir (no
# cgroups, no accounting database; finished jobs are logged by jobcomp/filetxt), runs the .test
# configuration with profiles/slurm, checks from Slurm's job completion log that every model,
# validation and permutation job ran as a SLURM job and completed, compares the manifest with
# the committed expectation, and stops the daemons it started (by PID) on exit.
# The host's /etc/slurm is never written: everything reads the temp config through SLURM_CONF.
#
# Usage: tests/slurm/run.sh   (from anywhere, with the test environment active or PYTHON=/path/to/python;
#        the package must be installed in it: python -m pip install -e '.[slurm]')
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive

# The interpreter of the environment running the tests, for snakemake, yaml and pip alike.
PYTHON=${PYTHON:-$(command -v python || true)}
[ -n "$PYTHON" ] || { echo "no python on PATH: activate the test environment or set PYTHON" >&2; exit 1; }
echo "python: $PYTHON"

for cmd in slurmctld slurmd sbatch srun squeue sinfo munged; do
  if ! command -v "$cmd" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    break
  fi
done
"$PYTHON" -c "import snakemake_executor_plugin_slurm, snakemake_executor_plugin_slurm_jobstep" 2>/dev/null \
  || "$PYTHON" -m pip install -q -e "${root}[slurm]"

# The host's slurm.conf (normally absent): it must be the same when we are done.
etc_conf() { if [ -e /etc/slurm/slurm.conf ]; then sha256sum /etc/slurm/slurm.conf; else echo absent; fi; }
etc_before=$(etc_conf)

work=$(mktemp -d /tmp/pnitrial-slurm.XXXXXX)
state="$work/slurm"
mkdir -p "$state/spool" "$state/state" "$work/munge" "$work/bin"
echo "work dir: $work"
cleanup() {
  # Jobs of this throw-away cluster first (their slurmstepds outlive slurmd), then the daemons.
  if [ -f "$state/slurmctld.pid" ]; then
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
  fi
  local pidfile pid pids=()
  for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$work/munge/munged.pid"; do
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  # wait (up to 15 s) until they are gone, so that a next run finds the ports free
  for _ in $(seq 30); do
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && { sleep 0.5; continue 2; }; done
    break
  done
}
trap cleanup EXIT

# munge: a throw-away key and socket of our own, so nothing of the host's is touched.
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
host=$(hostname -s)
mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" <<EOF
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
JobCompType=jobcomp/filetxt
JobCompLoc=$work/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# Where the config path reaches, for Slurm 22.05 (Debian 12):
# - the daemons get it with -f; the client commands here read SLURM_CONF;
# - slurmd puts its own config path into every job's environment as SLURM_CONF (whatever sbatch
#   --export says), so a batch script and a plain `srun` inside it find this file;
# - but the snakemake jobstep executor runs `srun` with every SLURM_* variable except the job's
#   identity removed (SLURM_CONF included), and srun without SLURM_CONF reads
#   /etc/slurm/slurm.conf, then /run/slurm/conf/slurm.conf (configless slurmd), then DNS SRV
#   records: "fatal: Could not establish a configuration source".
# So the jobs find srun through a shim first in PATH (sbatch --export=ALL carries PATH into the
# job) that puts SLURM_CONF back and runs the real srun.
real_srun=$(command -v srun)
cat > "$work/bin/srun" <<EOF
#!/bin/sh
SLURM_CONF='$SLURM_CONF'
export SLURM_CONF
exec '$real_srun' "\$@"
EOF
chmod +x "$work/bin/srun"
export PATH="$work/bin:$PATH"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
up=0
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)'; then up=1; break; fi
  sleep 1
done
sinfo
[ "$up" -eq 1 ] || { echo "the SLURM node did not come up; see $state/*.log" >&2; exit 1; }

# The site profile with its placeholders filled in for this cluster (no accounting here).
mkdir -p "$work/profile"
sed -e 's/"<partition>"/debug/' -e 's/  slurm_account: "<account>"//' \
  "$root/profiles/slurm/config.yaml" > "$work/profile/config.yaml"
cat >> "$work/profile/config.yaml" <<EOF
slurm-no-account: true
slurm-keep-successful-logs: true
slurm-init-seconds-before-status-checks: 1
EOF

run="$work/run"
mkdir -p "$run"
cp -r "$root/.test/config" "$root/.test/data" "$root/.test/expected" "$run/"
cd "$run"
smk_rc=0
"$PYTHON" -m snakemake -s "$root/Snakefile" --profile "$work/profile" --jobs 4 2>&1 \
  | tee "$work/snakemake.log" | tail -5 || smk_rc=$?

# Every job snakemake submitted (a "rule" line in its log; local jobs print "localrule") must have
# been a SLURM job that completed: validation, every model job, and the analyses that refit models.
# Counted from slurmctld's job completion log (one line per finished job), once every job has left
# the queue; reported also when snakemake failed.
for _ in $(seq 30); do
  [ -z "$(squeue -h -o %i)" ] && break
  sleep 1
done
touch "$work/jobcomp.txt"
n_models=$("$PYTHON" -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["outcomes"]))' \
  "$run/data/dataset.yaml")
n_expected=$(grep -c '^rule ' "$work/snakemake.log" || true)
for heavy in validate_data fit_outcome permutation_tests sensitivity diagnostics; do
  grep -q "^rule $heavy:" "$work/snakemake.log" || { echo "$heavy was not submitted to SLURM" >&2; exit 1; }
done
[ "$n_expected" -ge $((n_models + 4)) ] || { echo "only $n_expected jobs were submitted to SLURM" >&2; exit 1; }
n_completed=$(grep -c ' JobState=COMPLETED ' "$work/jobcomp.txt" || true)
not_completed=$(grep -v ' JobState=COMPLETED ' "$work/jobcomp.txt" || true)
echo "outcomes: $n_models; jobs submitted: $n_expected; COMPLETED in slurmctld's job completion log: $n_completed"
if [ -n "$not_completed" ]; then
  echo "SLURM jobs that did not complete:" >&2
  echo "$not_completed" \
    | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(JobId|Name|JobState|ExitCode|NodeList)=/) printf "%s ", $i; print "" }' >&2
  exit 1
fi
[ "$smk_rc" -eq 0 ] || { echo "snakemake failed (exit $smk_rc); see $work/snakemake.log" >&2; exit "$smk_rc"; }
[ "$n_completed" -eq "$n_expected" ] || { echo "expected $n_expected completed SLURM jobs" >&2; exit 1; }

[ "$(etc_conf)" = "$etc_before" ] || { echo "/etc/slurm/slurm.conf changed during the run" >&2; exit 1; }

cmp results/MANIFEST.sha256 expected/MANIFEST.sha256
echo "SLURM run is byte-identical to the local expectation ($(wc -l < results/MANIFEST.sha256) files)"
