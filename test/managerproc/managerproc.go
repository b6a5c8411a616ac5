// Package managerproc runs pgstack's manager binary as its own process, the
// way it runs in a cluster: it can be killed without warning, started again,
// and its metrics endpoint scraped.
package managerproc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/testenv"
)

// Build compiles the manager from the repository into dir and returns its path.
func Build(dir string) (string, error) {
	bin := dir + "/manager"
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the manager: %w\n%s", err, out)
	}
	return bin, nil
}

// Options say how to run the manager.
type Options struct {
	Binary     string
	Kubeconfig string
	// LogPath collects stdout and stderr of every run, appended.
	LogPath string
	// Args are extra flags after the defaults (plain-HTTP metrics on a
	// loopback port, no health probes).
	Args []string
}

// Process is the manager, across restarts: one process at a time.
type Process struct {
	opts       Options
	metricsURL string

	mu       sync.Mutex
	proc     *cluster.Launched // nil while none runs
	starts   int
	killed   int
	unwanted []string // exits nobody asked for
}

// Start runs the manager.
func Start(opts Options) (*Process, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	p := &Process{opts: opts, metricsURL: "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Process) start() error {
	logFile, err := os.OpenFile(p.opts.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open manager log: %w", err)
	}
	fmt.Fprintf(logFile, "\n==== manager start at %s ====\n", time.Now().Format(time.RFC3339Nano))
	args := append([]string{"manager", "--metrics-bind-address=" + p.metricsURL[len("http://"):len(p.metricsURL)-len("/metrics")],
		"--metrics-secure=false", "--health-probe-bind-address=0"}, p.opts.Args...)
	cmd := exec.Command(p.opts.Binary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+p.opts.Kubeconfig)
	// The cluster's launcher: its own process group, and it dies with the
	// test even when the test is SIGKILLed.
	proc, err := cluster.Launch("the manager", cmd, p.opts.LogPath, logFile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.proc = proc
	p.starts++
	p.mu.Unlock()
	go func() {
		<-proc.Done()
		p.mu.Lock()
		// Kill and Stop clear p.proc before they end it; any other exit is a crash.
		if p.proc == proc {
			p.unwanted = append(p.unwanted, fmt.Sprintf("pid %d exited by itself: %v", proc.PID(), proc.Exited()))
		}
		p.mu.Unlock()
	}()
	return nil
}

// Kill ends the manager with SIGKILL, as a node failure or the OOM killer
// would, and returns once it is reaped.
func (p *Process) Kill() {
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.killed++
	p.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Restart kills the manager (SIGKILL) and starts it again.
func (p *Process) Restart() error {
	p.Kill()
	return p.start()
}

// Resume starts the manager again after Kill or Stop, as a new process.
func (p *Process) Resume() error {
	if pid := p.PID(); pid != 0 {
		return fmt.Errorf("resume the manager: it still runs as pid %d", pid)
	}
	return p.start()
}

// Stop ends the manager gracefully (SIGTERM, then SIGKILL after 10 s).
func (p *Process) Stop() {
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc != nil {
		proc.Stop(10 * time.Second)
	}
}

// PID is the running manager's process id (0 when none runs).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.PID()
}

// Starts is how many times the manager was started; Kills how many times it was SIGKILLed.
func (p *Process) Starts() int { p.mu.Lock(); defer p.mu.Unlock(); return p.starts }

// Kills is how many times Kill ended the manager.
func (p *Process) Kills() int { p.mu.Lock(); defer p.mu.Unlock(); return p.killed }

// Exited reports an exit nobody asked for (a crash), or nil.
func (p *Process) Exited() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.unwanted) > 0 {
		return fmt.Errorf("the manager crashed: %v (log: %s)", p.unwanted, p.opts.LogPath)
	}
	return nil
}

// WaitServing waits until the running manager's metrics endpoint answers.
func (p *Process) WaitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if _, err := p.ReconcileTotal(ctx); err == nil {
			return nil
		}
		if err := p.Exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager's metrics endpoint %s did not answer within %s (log: %s)", p.metricsURL, timeout, p.opts.LogPath)
		case <-ticker.C:
		}
	}
}

// Metrics scrapes the running manager's metrics endpoint.
func (p *Process) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", p.metricsURL, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse the manager's metrics: %w", err)
	}
	return families, nil
}

// ReconcileTotal is controller_runtime_reconcile_total{controller="postgresstack"},
// summed over results, of the running manager.
func (p *Process) ReconcileTotal(ctx context.Context) (float64, error) {
	return p.Sum(ctx, "controller_runtime_reconcile_total", map[string]string{"controller": "postgresstack"})
}

// Sum adds up the counter or gauge name over the series carrying every label in match.
func (p *Process) Sum(ctx context.Context, name string, match map[string]string) (float64, error) {
	families, err := p.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, m := range families[name].GetMetric() {
		matched := 0
		for _, l := range m.GetLabel() {
			if v, ok := match[l.GetName()]; ok && v == l.GetValue() {
				matched++
			}
		}
		if matched == len(match) {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total, nil
}

// Leading reports whether the running manager holds the named
// leader-election Lease, by controller-runtime's
// leader_election_master_status gauge (1 while it leads; absent or 0 while
// it waits).
func (p *Process) Leading(ctx context.Context, lease string) (bool, error) {
	status, err := p.Sum(ctx, "leader_election_master_status", map[string]string{"name": lease})
	if err != nil {
		return false, err
	}
	return status == 1, nil
}

// Memory is the running manager's resident memory, in MiB, from
// /proc/<pid>/status.
type Memory struct {
	// PeakRSS (VmHWM) is the most that was ever resident at once.
	PeakRSS float64
	// Anon (RssAnon) is resident now and the process's own: Go's heap,
	// stacks and runtime.
	Anon float64
	// File (RssFile) is resident now and file-backed: mostly the pages of
	// the executable that ran, which the kernel can drop and read again.
	File float64
}

// Memory reads the running manager's resident memory.
func (p *Process) Memory() (Memory, error) {
	pid := p.PID()
	if pid == 0 {
		return Memory{}, fmt.Errorf("the manager is not running")
	}
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read the manager's memory: %w", err)
	}
	var m Memory
	fields := map[string]*float64{"VmHWM:": &m.PeakRSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		for prefix, into := range fields {
			rest, ok := strings.CutPrefix(line, prefix)
			if !ok {
				continue
			}
			value := strings.Fields(rest) // "12345 kB"
			if len(value) == 0 {
				return Memory{}, fmt.Errorf("%s: empty %s line", path, prefix)
			}
			kib, err := strconv.ParseFloat(value[0], 64)
			if err != nil {
				return Memory{}, fmt.Errorf("parse %s %q: %w", prefix, rest, err)
			}
			*into = kib / 1024
			found++
		}
	}
	if found != len(fields) {
		return Memory{}, fmt.Errorf("%s lacks one of VmHWM, RssAnon, RssFile", path)
	}
	return m, nil
}
