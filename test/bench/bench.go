// Command bench measures pgstack against the numbers in the design
// ("Numbers we hold ourselves to") on the full local cluster: real control
// plane, real OLM copying PGO's CSV into every namespace, kwok nodes, PGO's own
// manager, and pgstack's manager binary as its own process.
//
//	make bench                       (STACKS=1000, IDLE=60s)
//	STACKS=100 IDLE=10s make bench
//	PGO_WORKERS=8 UPGRADES_UP_TO=100 BASELINE_READY_UP_TO=100 make bench
//
// PGO_WORKERS is set on PGO's Subscription (PGO's default is 2);
// UPGRADES_UP_TO and BASELINE_READY_UP_TO leave the operator upgrades and
// the baseline's wait for PGO's readiness out of larger rounds (on two
// cores PGO takes over half an hour for a thousand clusters, and the
// upgrades restart each).
//
// It runs two rounds, at STACKS/10 and STACKS, each on a fresh cluster, and
// in each round:
//  1. creates a tenth as many stacks as the round's, each in its own
//     namespace, before PGO is installed: the manager subscribes and
//     approves, and the bench times, from its own watches, PGO's CSV turning
//     Succeeded to each waiting stack's PostgresCluster being added
//     (csv_to_cluster);
//  2. creates a namespace per stack and waits until OLM has copied PGO's
//     CSV into each;
//  3. baseline, with the manager stopped: a bare client creates, in those
//     namespaces, the PostgresClusters pgstack renders for the same stacks
//     (timed: baseline_applied_seconds) and awaits PGO's readiness
//     (baseline_seconds); then deletes them and starts the manager again
//     (which should write nothing for the Ready waiting stacks);
//  4. pgstack: creates the stacks, times them to their PostgresClusters
//     applied (the design's ratio, applied_ratio_to_baseline) and to
//     Ready=True on each, counting the manager's writes in the API
//     server's audit log;
//  5. counts the manager's writes and reconciles over IDLE of steady state;
//  6. publishes two PGO releases with new default images and measures how
//     the clusters restart, without and with a rollout policy;
//  7. reads the manager's peak RSS.
//
// It prints the figures side by side and writes them to bench/results.json.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Config shapes one bench run.
type Config struct {
	// Manager is the pgstack manager binary.
	Manager string
	// ManagerArgs are extra manager flags.
	ManagerArgs []string
	// Rounds are the stack counts, one fresh cluster each.
	Rounds []int
	// Idle is the steady-state window.
	Idle time.Duration
	// PhaseTimeout bounds each wait for readiness.
	PhaseTimeout time.Duration
	// CopyTimeout bounds the wait for OLM's copied CSVs.
	CopyTimeout time.Duration
	// DatabaseStart is how long a database pod on an upgrade's new images
	// takes to start (default 5 s).
	DatabaseStart time.Duration
	// PGOWorkers, when not 0, is set as PGO_WORKERS on PGO's Subscription
	// (PGO reconciles pgoDefaultWorkers PostgresClusters at once by default).
	PGOWorkers int
	// UpgradesUpTo, when not 0, is the largest round that runs the
	// operator upgrades: each restarts every cluster, one after another
	// with a policy, and on two cores a thousand take hours.
	UpgradesUpTo int
	// BaselineReadyUpTo, when not 0, is the largest round whose baseline
	// awaits PGO's readiness, for the ratio to Ready: at a thousand
	// clusters PGO takes over half an hour, and the design's ratio is to
	// the clusters applied.
	BaselineReadyUpTo int
	// Out receives progress and the table.
	Out io.Writer
}

// Results are what bench/results.json holds.
type Results struct {
	When         time.Time `json:"when"`
	Machine      Machine   `json:"machine"`
	WritesSource string    `json:"writes_source"`
	Rounds       []Round   `json:"rounds"`
	Goals        []Goal    `json:"goals"`
}

// Machine is where the figures were measured.
type Machine struct {
	CPUs      int     `json:"cpus"`
	MemoryGiB float64 `json:"memory_gib"`
	GoVersion string  `json:"go_version"`
}

// Round holds one round's figures.
type Round struct {
	Stacks int `json:"stacks"`
	// PGOWorkers is PGO's PGO_WORKERS in the round.
	PGOWorkers    int `json:"pgo_workers"`
	WaitingStacks int `json:"waiting_stacks"`
	Namespaces    int `json:"namespaces"`
	CopiedCSVs    int `json:"copied_csvs"`
	// CopySeconds is from the stacks' namespaces being created to OLM's last copy of PGO's CSV.
	CopySeconds float64 `json:"copy_seconds"`

	// SecondsToAllApplied is from the first stack created to the last of
	// their PostgresClusters written by the manager (the audit log's
	// clock); BaselineAppliedSeconds is the bare client's time to create
	// the same PostgresClusters; their ratio is the design's.
	SecondsToAllApplied    float64 `json:"seconds_to_all_applied"`
	BaselineAppliedSeconds float64 `json:"baseline_applied_seconds"`
	AppliedRatioToBaseline float64 `json:"applied_ratio_to_baseline"`

	// SecondsToAllReady is to every stack Ready; BaselineSeconds to every
	// baseline PostgresCluster ready (0 when the round does not await it,
	// Config.BaselineReadyUpTo); RatioToBaseline theirs, PGO's pace
	// included.
	SecondsToAllReady float64 `json:"seconds_to_all_ready"`
	BaselineSeconds   float64 `json:"baseline_seconds"`
	RatioToBaseline   float64 `json:"ratio_to_baseline"`

	// ReadyLagP50ms and ReadyLagP99ms: from PGO reporting a stack's
	// PostgresCluster ready to the stack's Ready, as the bench's watches saw them.
	ReadyLagP50ms float64 `json:"ready_lag_p50_ms"`
	ReadyLagP99ms float64 `json:"ready_lag_p99_ms"`

	WritesPerStack float64 `json:"writes_per_stack"`
	// PGOWritesPerCluster is PGO's writes (every resource) over the same
	// span, per PostgresCluster: the work pgstack's writes sit beside.
	PGOWritesPerCluster      float64            `json:"pgo_writes_per_cluster"`
	WritesPerStackByResource map[string]float64 `json:"writes_per_stack_by_resource"`
	// ClientWritesPerStack is the manager's own count (rest_client_requests_total), a cross-check.
	ClientWritesPerStack float64 `json:"client_writes_per_stack"`
	ReconcilesPerStack   float64 `json:"reconciles_per_stack"`

	IdleSeconds          float64 `json:"idle_seconds"`
	IdleWritesPerMin     float64 `json:"idle_writes_per_min"`
	IdleReconcilesPerMin float64 `json:"idle_reconciles_per_min"`
	// IdleChanges are changes, by kind, to what the manager watches during the window.
	IdleChanges map[string]float64 `json:"idle_changes"`

	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// RestartWrites are the manager's writes when it starts again with the
	// waiting stacks Ready (it is stopped for the baseline).
	RestartWrites float64 `json:"restart_writes"`
	// HeapInuseMiB is the manager's Go heap in use at the end of the round.
	HeapInuseMiB float64 `json:"heap_inuse_mib"`
	// HeapLiveMiB is what of the heap is still reachable after a forced
	// collection at the end of the round: what the round's stacks cost,
	// without the garbage awaiting collection.
	HeapLiveMiB float64 `json:"heap_live_mib"`
	// RSSAnonMiB and RSSFileMiB split the manager's resident memory at the
	// end of the round: its own (heap, stacks, runtime) and file-backed
	// (the executable's pages).
	RSSAnonMiB float64 `json:"rss_anon_mib"`
	RSSFileMiB float64 `json:"rss_file_mib"`

	// InstallSeconds is from the first waiting stack to PGO's CSV Succeeded.
	InstallSeconds        float64 `json:"install_seconds"`
	CSVToClusterP50ms     float64 `json:"csv_to_cluster_p50_ms"`
	CSVToClusterP99ms     float64 `json:"csv_to_cluster_p99_ms"`
	CSVToClusterMaxms     float64 `json:"csv_to_cluster_max_ms"`
	WaitingWritesPerStack float64 `json:"waiting_writes_per_stack"`
	// WriteLatencyMs is the API server's mean time per write of the manager's,
	// by resource, in the pgstack phase: where its time goes.
	WriteLatencyMs map[string]float64 `json:"write_latency_ms_by_resource"`

	// An operator upgrade that changes every default image, without and
	// with a PostgresRolloutPolicy: the most clusters restarting at once,
	// their ratio, and the seconds from pgstack's approval to the last
	// cluster Ready on the new images (upgrade.go).
	UpgradeMaxRestarting           int     `json:"upgrade_max_restarting"`
	UpgradeSeconds                 float64 `json:"upgrade_seconds"`
	UpgradePolicyMaxConcurrent     int     `json:"upgrade_policy_max_concurrent"`
	UpgradeMaxRestartingWithPolicy int     `json:"upgrade_max_restarting_with_policy"`
	UpgradeSecondsWithPolicy       float64 `json:"upgrade_seconds_with_policy"`
	UpgradeRestartingRatio         float64 `json:"upgrade_restarting_ratio"`

	RoundSeconds float64 `json:"round_seconds"`
	// LoadAverage is the machine's 1-minute load average at the round's
	// start and end: everything else running shares the same cores.
	LoadAverage [2]float64 `json:"load_average"`
}

// pgoDefaultWorkers is PGO's PostgresCluster concurrency without
// PGO_WORKERS (cmd/postgres-operator/main.go).
const pgoDefaultWorkers = 2

// Goal is one of the design's numbers, judged on the largest round.
type Goal struct {
	Figure string  `json:"figure"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

// Run runs every round and prints the table; it returns the results even
// when a later round fails, with the error.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	// The harness's watches log through controller-runtime; the bench prints progress itself.
	ctrllog.SetLogger(logr.Discard())
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	res := &Results{When: time.Now().UTC().Truncate(time.Second), Machine: machine(), WritesSource: writesSource}
	for _, n := range cfg.Rounds {
		r, err := runRound(ctx, cfg, n, say)
		if err != nil {
			return res, err
		}
		res.Rounds = append(res.Rounds, r)
	}
	res.Goals = goals(res.Rounds[len(res.Rounds)-1])
	printTable(cfg.Out, res)
	return res, nil
}

func goals(r Round) []Goal {
	return []Goal{
		{"applied_ratio_to_baseline", "≤ 1.5", r.AppliedRatioToBaseline, r.AppliedRatioToBaseline <= 1.5},
		{"writes_per_stack", "≤ 4", r.WritesPerStack, r.WritesPerStack <= 4},
		{"idle_writes_per_min", "0", r.IdleWritesPerMin, r.IdleWritesPerMin == 0},
		{"idle_reconciles_per_min", "0", r.IdleReconcilesPerMin, r.IdleReconcilesPerMin == 0},
		{"peak_rss_mib", "< 64", r.PeakRSSMiB, r.PeakRSSMiB < 64},
		{"csv_to_cluster_p99_ms", "< 100", r.CSVToClusterP99ms, r.CSVToClusterP99ms < 100},
		{"ready_lag_p99_ms", "≤ 1000", r.ReadyLagP99ms, r.ReadyLagP99ms <= 1000},
	}
}

func printTable(out io.Writer, res *Results) {
	fmt.Fprintf(out, "\npgstack bench, %d CPUs, %.0f GiB; writes: %s\n\n", res.Machine.CPUs, res.Machine.MemoryGiB, res.WritesSource)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, value func(Round) string, goal string) {
		cells := []string{name}
		for _, r := range res.Rounds {
			cells = append(cells, value(r))
		}
		cells = append(cells, goal)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	f := func(format string, get func(Round) float64) func(Round) string {
		return func(r Round) string { return fmt.Sprintf(format, get(r)) }
	}
	// orDash prints a figure a round did not measure as "-".
	orDash := func(get func(Round) float64) func(Round) string {
		return func(r Round) string {
			if get(r) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", get(r))
		}
	}
	row("figure", func(r Round) string { return fmt.Sprintf("N=%d", r.Stacks) }, "goal")
	row("PGO_WORKERS", func(r Round) string { return fmt.Sprint(r.PGOWorkers) }, "")
	row("namespaces / copied CSVs", func(r Round) string { return fmt.Sprintf("%d / %d", r.Namespaces, r.CopiedCSVs) }, "")
	row("seconds OLM took to copy its CSV", f("%.0f", func(r Round) float64 { return r.CopySeconds }), "")
	row("seconds_to_all_applied", f("%.2f", func(r Round) float64 { return r.SecondsToAllApplied }), "")
	row("baseline_applied_seconds (bare creates)", f("%.2f", func(r Round) float64 { return r.BaselineAppliedSeconds }), "")
	row("applied_ratio_to_baseline", f("%.2f", func(r Round) float64 { return r.AppliedRatioToBaseline }), "≤ 1.5")
	row("seconds_to_all_ready", f("%.2f", func(r Round) float64 { return r.SecondsToAllReady }), "")
	row("baseline_seconds (to PGO ready)", orDash(func(r Round) float64 { return r.BaselineSeconds }), "")
	row("ratio_to_baseline (to Ready, PGO's pace included)", orDash(func(r Round) float64 { return r.RatioToBaseline }), "")
	row("ready_lag_p50_ms (PGO ready → stack Ready)", f("%.0f", func(r Round) float64 { return r.ReadyLagP50ms }), "")
	row("ready_lag_p99_ms", f("%.0f", func(r Round) float64 { return r.ReadyLagP99ms }), "≤ 1000")
	row("writes_per_stack", f("%.2f", func(r Round) float64 { return r.WritesPerStack }), "≤ 4")
	for _, resource := range resources(res.Rounds) {
		row("  "+resource, f("%.2f", func(r Round) float64 { return r.WritesPerStackByResource[resource] }), "")
	}
	for _, resource := range resources(res.Rounds) {
		row("  API server ms per write, "+resource, f("%.1f", func(r Round) float64 { return r.WriteLatencyMs[resource] }), "")
	}
	row("  PGO's writes per cluster, same span", f("%.1f", func(r Round) float64 { return r.PGOWritesPerCluster }), "")
	row("  (manager's own count)", f("%.2f", func(r Round) float64 { return r.ClientWritesPerStack }), "")
	row("reconciles per stack", f("%.2f", func(r Round) float64 { return r.ReconcilesPerStack }), "")
	row("idle_writes_per_min", f("%.1f", func(r Round) float64 { return r.IdleWritesPerMin }), "0")
	row("idle_reconciles_per_min", f("%.1f", func(r Round) float64 { return r.IdleReconcilesPerMin }), "0")
	row("peak_rss_mib", f("%.1f", func(r Round) float64 { return r.PeakRSSMiB }), "< 64")
	row("  resident at the end, own / executable's pages, MiB", func(r Round) string { return fmt.Sprintf("%.1f / %.1f", r.RSSAnonMiB, r.RSSFileMiB) }, "")
	row("  Go heap live after a forced GC at the end, MiB", f("%.1f", func(r Round) float64 { return r.HeapLiveMiB }), "")
	row("writes on restart, waiting stacks Ready", f("%.0f", func(r Round) float64 { return r.RestartWrites }), "")
	row("heap in use at the end, MiB", f("%.1f", func(r Round) float64 { return r.HeapInuseMiB }), "")
	row("waiting stacks", func(r Round) string { return fmt.Sprint(r.WaitingStacks) }, "")
	row("install seconds (stack → CSV Succeeded)", f("%.1f", func(r Round) float64 { return r.InstallSeconds }), "")
	row("csv_to_cluster_p50_ms", f("%.0f", func(r Round) float64 { return r.CSVToClusterP50ms }), "")
	row("csv_to_cluster_p99_ms", f("%.0f", func(r Round) float64 { return r.CSVToClusterP99ms }), "< 100")
	row("csv_to_cluster_max_ms", f("%.0f", func(r Round) float64 { return r.CSVToClusterMaxms }), "")
	row("writes per waiting stack", f("%.2f", func(r Round) float64 { return r.WaitingWritesPerStack }), "")
	// upgrade prints an upgrade figure, or "-" for a round without upgrades.
	upgrade := func(value func(Round) string) func(Round) string {
		return func(r Round) string {
			if r.UpgradeSeconds == 0 {
				return "-"
			}
			return value(r)
		}
	}
	row("upgrade: most clusters restarting at once, no policy", upgrade(func(r Round) string { return fmt.Sprint(r.UpgradeMaxRestarting) }), "")
	row("upgrade: most at once, policy (its maxConcurrent)", upgrade(func(r Round) string {
		return fmt.Sprintf("%d (%d)", r.UpgradeMaxRestartingWithPolicy, r.UpgradePolicyMaxConcurrent)
	}), "")
	row("upgrade: ratio, no policy / policy", upgrade(f("%.2f", func(r Round) float64 { return r.UpgradeRestartingRatio })), "")
	row("upgrade: s approval → all new images, no policy", upgrade(f("%.1f", func(r Round) float64 { return r.UpgradeSeconds })), "")
	row("upgrade: s approval → all new images, policy", upgrade(f("%.1f", func(r Round) float64 { return r.UpgradeSecondsWithPolicy })), "")
	row("round seconds", f("%.0f", func(r Round) float64 { return r.RoundSeconds }), "")
	row("load average at start / end", func(r Round) string { return fmt.Sprintf("%.1f / %.1f", r.LoadAverage[0], r.LoadAverage[1]) }, "")
	tw.Flush()
	fmt.Fprintf(out, "\ngoals at N=%d:\n", res.Rounds[len(res.Rounds)-1].Stacks)
	for _, g := range res.Goals {
		verdict := "met"
		if !g.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "  %-24s %10.2f  goal %-6s %s\n", g.Figure, g.Value, g.Goal, verdict)
	}
}

// resources are the resources any round wrote, in a stable order.
func resources(rounds []Round) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rounds {
		for k := range r.WritesPerStackByResource {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib float64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %f kB", &kib); err == nil {
			m.MemoryGiB = round2(kib / 1024 / 1024)
		}
	}
	return m
}

// writeResults writes res as indented JSON, creating the directory.
func writeResults(path string, res *Results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadAverage is the machine's 1-minute load average (0 when unknown).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var load float64
	_, _ = fmt.Sscanf(string(data), "%f", &load)
	return load
}
