package main

import (
	"context"

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
