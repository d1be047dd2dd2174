#!/usr/bin/env bash
# test.sh: the README's second command; CI runs it. Installs what the tests
# need (idempotent), builds lkc, checks formatting and vet, then runs every
# test as root: unit tests, the integration suite against the built binary
# on this host's cgroups, and the cgroup v2 part inside a VM (scripts/vmtest).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH

./scripts/deps.sh
make lkc >/dev/null
# The plain build (glibc, Debian's libseccomp-dev) must stay green too.
mkdir -p tmp
make BIN=tmp/lkc-glibc lkc-glibc >/dev/null
tmp/lkc-glibc --version >/dev/null
# So must the static-PIE variant: linked with no interpreter and no shared
# library, and able to run a container.
make PIE_BIN=tmp/lkc-pie lkc-pie >/dev/null
pie=$(readelf -hld tmp/lkc-pie)
if ! grep -q 'Type: *DYN' <<<"$pie" || grep -qE 'INTERP|\(NEEDED\)' <<<"$pie"; then
  echo "test: tmp/lkc-pie is not a static PIE" >&2
  exit 1
fi
./scripts/smoke.sh tmp/lkc-pie
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "test: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# Generated files (the codecs of internal/codegen, nsenter's errnos.h) must
# be what their sources make of them: go generate ./... && git diff
# --exit-code, compared with the diff before it so that uncommitted work
# does not count. go generate needs nothing but the Go toolchain.
before=$(git diff)
go generate ./...
if [ "$(git diff)" != "$before" ]; then
  git diff --stat >&2
  echo "test: go generate ./... changed the files above: commit its output" >&2
  exit 1
fi
# The suite runs a copy: a `make` during the run (bin/lkc rebuilt under
# the guests' 9p mount) crashed the guests' lkc processes with SIGSEGV.
cp bin/lkc tmp/lkc-under-test
export LKC_BINARY=$repo/tmp/lkc-under-test
# The build `lkc daemon upgrade` replaces lkc with in the upgrade tests,
# made once here rather than by each test (inside the VM, ~40 s each).
make BIN="$repo/tmp/lkc-upgrade-test" VERSION=upgrade-test lkc >/dev/null
export LKC_UPGRADE_BINARY=$repo/tmp/lkc-upgrade-test
# cgroup v2: the lifecycle and cgroup tests again, inside a VM whose kernel
# mounts a pure v2 hierarchy (this host is v1). The guest runs code ~20-40x
# slower, so only that part of the suite goes there. Its kernel (6.1) also
# has what CRIU needs and this host's 6.18 lacks: a working lazy-pages page
# server (post-copy) and soft-dirty (pre-dump, pre-copy); see docs/criu.md.
# One test name (regex) a line, so that branches adding tests merge cleanly.
v2tests=(
  TestCheckpointRestoreCounter
  TestCheckpointTCPEstablished
  TestCheckpointLazyPages
  TestCheckpointPreDump
  TestCheckpointPausedExecPending
  TestMigrate
  TestRun
  TestNested
  TestCrashCreate
  TestExecCgroup
  TestExecJoinsEveryNamespace
  TestExecExitCodeEnvCwdUser
  TestExecProcessFileAndCaps
  TestExecDetachPidFile
  TestExecRefusedWhenPausedOrStopped
  TestExecIgnorePaused
  TestProcessScheduler
  TestExecCPUAffinity
  TestBadProcessSched
  TestRestoreCgroupsMode
  TestRestorePreResumeFailureRunsNothing
  TestExecIntoUserNamespace
  TestExecWithConsoleSocket
  TestExecStdioArePipes
  TestSecDevices
  TestRootfsLinuxDevices
  TestUpdate
  TestEvents
  TestResources
  TestPause
  TestPs
  TestDeleteForce
  TestCLILifecycle
  TestCrashInit
  TestProcessMemoryLimit
  TestProcessPidsLimit
  TestRootfsCgroup
  TestNamespaceCgroup
  TestCgroupPath
  TestSecCgroupOfAnother
  TestRootfsPropagation
  TestRootfsRecursiveReadonly
  TestRootfsReadonlyPathsKeepExec
  TestNamespaceMount
  TestCorruptStateListAndDelete
  TestSlowCreateBlocksNothing
  TestSignalRightAfterStart
  TestRlimitASWithSeccomp
  TestPidsLimitTiny
  TestLimits
  TestProcfs
  TestProcView
  TestProcReadAcross
  TestProcRepairAfterBothKilled
  TestProcRepairAbortsDeadSession
  TestProcBadCgroups
  TestGroup
  TestStats
  TestTop
  TestMetrics
  TestSeccompAgent
  TestSeccompInFlightAcrossKill
  TestSeccompNoFeatureNoFilter
  TestRules
  TestOOM
  TestNetPolicy
  TestConformKillPausedSIGKILL
  TestConformPauseCreated
  TestStartWithoutGoRuntime
)
# Tests those prefixes take in that check nothing of cgroup v2 (flags,
# tokens, bookkeeping, signals, parsing, the time namespace, a second
# storm, sorting), left to the host's run.
v2skip=(
  TestExecIgnorePausedNeverRan
  TestMigrateAllContainerCreatedMeanwhile
  TestMigrateAllContainerGone
  TestMigrateAllCommitUnconfirmed
  TestMigrateAllDryRunTmpfsMemory
  TestMigrateAllPaused
  TestMigrateAllSignals
  TestMigrateAllTargetGone
  TestMigrateBadFlags
  TestMigrateRefusals
  TestMigrateUserNS
  TestProcViewOwnTimeNamespace
  TestProcViewPidsSurviveDaemonKill
  TestProcViewTimeNamespaceCheckpoint
  TestProcViewTimeNamespaceHostPid
  TestProcViewTimeNamespacePod
  TestProcViewTimeNamespaceUserNS
  TestProcViewTimeNamespaceUserNSCheckpoint
  TestRulesCheckMissingGroup
  TestRulesCgrulesScript
  TestRulesExplainLeftAlone
  TestRulesMissingGroup
  TestRulesStormAcrossWorkerKill
  TestRunMissingExecutable
  TestTopOnceSorts
)
v2re=$(IFS='|'; echo "${v2tests[*]}")
v2skipre=$(IFS='|'; echo "^(${v2skip[*]})\$")
go test -c -o tmp/integration.test ./test/integration
# The guest runs one test at a time and keeps about one host CPU busy, so
# the chosen tests go to two guests side by side, and both run while the
# host's own suite does. The deal evens the guests' time: longest test
# first, each to the guest with less so far, by the seconds each took in
# an earlier run (scripts/v2-seconds).
mapfile -t v2names < <(tmp/integration.test -test.list "$v2re" | grep -vxE "$v2skipre")
[ ${#v2names[@]} -gt 0 ] || { echo "test: no cgroup v2 test matches $v2re" >&2; exit 1; }
mapfile -t v2deal < <(printf '%s\n' "${v2names[@]}" | awk '
  FNR == NR { if ($1 !~ /^#/) secs[$1] = $2; next }
  { print (($1 in secs) ? secs[$1] : 10), $1 }' scripts/v2-seconds - |
  sort -k1,1nr -k2 | awk '{ s = (t[0] <= t[1]) ? 0 : 1; t[s] += $1; print s, $2 }')
vmlogs=() vmpids=()
trap 'for p in "${vmpids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for shard in 0 1; do
  names=()
  for d in "${v2deal[@]}"; do
    [ "${d% *}" = $shard ] && names+=("${d#* }")
  done
  vmlog=$(mktemp /tmp/lkc-test-vm$shard.XXXXXX.log)
  echo "=== cgroup v2 (VM $shard): ${names[*]}" >"$vmlog"
  scripts/vmtest --timeout 2400 -e LKC_BINARY="$LKC_BINARY" -- \
    tmp/integration.test -test.count=1 -test.timeout 2300s -test.v \
    -test.run "^($(IFS='|'; echo "${names[*]}"))\$" >>"$vmlog" 2>&1 &
  vmlogs+=("$vmlog") vmpids+=($!)
done

log=$(mktemp /tmp/lkc-test.XXXXXX.log)
status=0
go test -count=1 -timeout 20m -v ./... >"$log" 2>&1 || status=$?
./scripts/drop-kdat-tmp # the empty file the tests' host CRIU runs leave

# Fuzz targets: each runs for a fixed budget on top of its committed corpus
# (testdata/fuzz/<target>); a crasher is written there and fails the run.
fuzz=(
  "FuzzConvert ./internal/spec"
  "FuzzFrames ./internal/migrate"
  "FuzzDecode ./internal/state"
)
for f in "${fuzz[@]}"; do
  read -r target pkg <<<"$f"
  echo "=== fuzz $target ($pkg, 10s)" >>"$log"
  go test -run '^$' -fuzz "^$target\$" -fuzztime 10s "$pkg" >>"$log" 2>&1 || status=$?
done

for shard in 0 1; do
  wait "${vmpids[$shard]}" || status=$?
  cat "${vmlogs[$shard]}" >>"$log"
  rm -f "${vmlogs[$shard]}"
done
vmpids=()

grep -E '^(ok|FAIL|---|panic:|=== cgroup|=== fuzz)|^\s+\S+_test\.go:[0-9]+:' "$log" | grep -v -- '--- PASS' || true
passed=$(grep -c -- '--- PASS' "$log" || true)
failed=$(grep -c -- '--- FAIL' "$log" || true)
skipped=$(grep -c -- '--- SKIP' "$log" || true)
echo "test: full log in $log"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
