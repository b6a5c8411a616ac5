package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/pgstack/pgstack/test/managerproc"
)

// metricsSnapshot is what the bench reads from the manager's own metrics.
type metricsSnapshot struct {
	// Reconciles is controller_runtime_reconcile_total{controller="postgresstack"}, every result.
	Reconciles float64
	// Writes is client-go's rest_client_requests_total for POST, PUT, PATCH and DELETE.
	Writes float64
	// HeapInuseBytes is the Go heap in use (go_memstats_heap_inuse_bytes):
	// beside peak RSS it tells live data from garbage awaiting collection.
	HeapInuseBytes float64
}

func (s metricsSnapshot) minus(before metricsSnapshot) metricsSnapshot {
	return metricsSnapshot{Reconciles: s.Reconciles - before.Reconciles, Writes: s.Writes - before.Writes}
}

var writeMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// scrape reads the figures the bench wants from the manager's metrics.
func scrape(ctx context.Context, mgr *managerproc.Process) (metricsSnapshot, error) {
	families, err := mgr.Metrics(ctx)
	if err != nil {
		return metricsSnapshot{}, err
	}
	var s metricsSnapshot
	if f := families["controller_runtime_reconcile_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m.GetLabel(), "controller") == "postgresstack" {
				s.Reconciles += m.GetCounter().GetValue()
			}
		}
	}
	if f := families["rest_client_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if writeMethods[label(m.GetLabel(), "method")] {
				s.Writes += m.GetCounter().GetValue()
			}
		}
	}
	if f := families["go_memstats_heap_inuse_bytes"]; f != nil && len(f.GetMetric()) > 0 {
		s.HeapInuseBytes = f.GetMetric()[0].GetGauge().GetValue()
	}
	return s, nil
}

func label(pairs []*dto.LabelPair, name string) string {
	for _, p := range pairs {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}

// liveHeapBytes forces a collection in the manager and reads what of its heap
// is still reachable (HeapAlloc in the header of Go's heap profile).
func liveHeapBytes(ctx context.Context, pprofAddr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddr+"/debug/pprof/heap?debug=1&gc=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the manager's heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read the manager's heap profile: %s", resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := lines.Err(); err != nil {
		return 0, fmt.Errorf("read the manager's heap profile: %w", err)
	}
	return 0, fmt.Errorf("the manager's heap profile has no HeapAlloc line")
}
