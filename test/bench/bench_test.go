package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstack/pgstack/test/managerproc"
)

// The bench's own code at a tiny scale (5 stacks, 5 s of steady state), so
// that `make bench` cannot rot between the runs that measure: every figure
// is filled in and results.json holds them all. Nothing here judges speed;
// the figures only mean something at scale, from `make bench`.
func TestBenchFillsEveryFigure(t *testing.T) {
	manager, err := managerproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{
		Manager: manager, Rounds: []int{5}, Idle: 5 * time.Second,
		PhaseTimeout: 3 * time.Minute, CopyTimeout: time.Minute, DatabaseStart: time.Second, Out: &out,
		// Not PGO's default, so that the figure shows what OLM rolled out.
		PGOWorkers: 3,
	})
	if err != nil {
		t.Fatalf("bench failed: %v\n%s", err, out.String())
	}
	if len(res.Rounds) != 1 {
		t.Fatalf("got %d rounds, want 1\n%s", len(res.Rounds), out.String())
	}
	r := res.Rounds[0]
	positive := map[string]float64{
		"stacks": float64(r.Stacks), "waiting_stacks": float64(r.WaitingStacks),
		"namespaces": float64(r.Namespaces), "copied_csvs": float64(r.CopiedCSVs),
		"seconds_to_all_applied": r.SecondsToAllApplied, "baseline_applied_seconds": r.BaselineAppliedSeconds, "applied_ratio_to_baseline": r.AppliedRatioToBaseline,
		"seconds_to_all_ready": r.SecondsToAllReady, "baseline_seconds": r.BaselineSeconds, "ratio_to_baseline": r.RatioToBaseline,
		"writes_per_stack": r.WritesPerStack, "pgo_writes_per_cluster": r.PGOWritesPerCluster, "client_writes_per_stack": r.ClientWritesPerStack, "reconciles_per_stack": r.ReconcilesPerStack,
		"idle_seconds": r.IdleSeconds, "peak_rss_mib": r.PeakRSSMiB,
		"install_seconds": r.InstallSeconds, "csv_to_cluster_p50_ms": r.CSVToClusterP50ms, "csv_to_cluster_p99_ms": r.CSVToClusterP99ms,
		"csv_to_cluster_max_ms": r.CSVToClusterMaxms, "waiting_writes_per_stack": r.WaitingWritesPerStack, "round_seconds": r.RoundSeconds,
		"copy_seconds": r.CopySeconds, "heap_inuse_mib": r.HeapInuseMiB, "heap_live_mib": r.HeapLiveMiB,
		"rss_anon_mib": r.RSSAnonMiB, "rss_file_mib": r.RSSFileMiB,
		"upgrade_max_restarting": float64(r.UpgradeMaxRestarting), "upgrade_seconds": r.UpgradeSeconds,
		"upgrade_max_restarting_with_policy": float64(r.UpgradeMaxRestartingWithPolicy), "upgrade_seconds_with_policy": r.UpgradeSecondsWithPolicy,
		"upgrade_restarting_ratio": r.UpgradeRestartingRatio,
	}
	for name, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want a measured (positive) figure", name, v)
		}
	}
	if r.PGOWorkers != 3 {
		t.Errorf("pgo_workers = %d, want the 3 set on PGO's Subscription as PGO's Deployment runs it", r.PGOWorkers)
	}
	if r.IdleWritesPerMin < 0 || r.IdleReconcilesPerMin < 0 {
		t.Errorf("idle figures are negative: %v writes/min, %v reconciles/min", r.IdleWritesPerMin, r.IdleReconcilesPerMin)
	}
	// Every stack's own objects are written: its status and its
	// PostgresCluster (a Retain stack gets no finalizer, so the stack
	// itself is not written).
	if w := r.WritesPerStackByResource["postgresstacks"]; w != 0 {
		t.Errorf("the manager wrote %v times per Retain stack to the stack itself; a Retain stack with removal Keep needs no finalizer", w)
	}
	for _, resource := range []string{"postgresstacks/status", "postgresclusters"} {
		if r.WritesPerStackByResource[resource] <= 0 {
			t.Errorf("writes_per_stack_by_resource lacks %s: %v", resource, r.WritesPerStackByResource)
		}
		if r.WriteLatencyMs[resource] <= 0 {
			t.Errorf("write_latency_ms_by_resource lacks %s: %v", resource, r.WriteLatencyMs)
		}
	}
	// A manager restarted to stacks that are Ready has nothing to say.
	if r.RestartWrites != 0 {
		t.Errorf("the manager wrote %v times when it restarted to Ready stacks, want none", r.RestartWrites)
	}
	if r.CopiedCSVs != r.Namespaces-1 {
		t.Errorf("OLM copied PGO's CSV into %d namespaces, want every one but its own (%d)", r.CopiedCSVs, r.Namespaces-1)
	}
	if len(res.Goals) != 7 || res.Machine.CPUs == 0 || res.WritesSource == "" {
		t.Errorf("results lack goals, machine or writes source: %+v", res)
	}

	// results.json carries every figure under its documented name.
	path := filepath.Join(t.TempDir(), "bench", "results.json")
	if err := writeResults(path, res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Rounds []map[string]any `json:"rounds"`
	}
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatalf("decode results.json: %v", err)
	}
	for _, name := range []string{"stacks", "pgo_workers", "applied_ratio_to_baseline", "seconds_to_all_ready", "baseline_seconds", "ratio_to_baseline", "writes_per_stack",
		"idle_writes_per_min", "idle_reconciles_per_min", "peak_rss_mib", "csv_to_cluster_p50_ms", "csv_to_cluster_p99_ms",
		"ready_lag_p50_ms", "ready_lag_p99_ms"} {
		if _, ok := decoded.Rounds[0][name]; !ok {
			t.Errorf("results.json lacks %s", name)
		}
	}
	for _, want := range []string{"applied_ratio_to_baseline", "ratio_to_baseline", "writes_per_stack", "goals at N=5:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
