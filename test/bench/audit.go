package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pgstack/pgstack/test/auditlog"
	"github.com/pgstack/pgstack/test/cluster"
)

// The kube-apiserver's audit log is how the bench counts the manager's
// writes by resource, and PGO's beside them: only the write verbs of the
// manager's and PGO's ServiceAccounts are logged (nothing for the
// baseline's client or OLM; PGO's in both runs alike).
var auditedWrites = auditlog.Rule{Users: []string{managerUser, cluster.PGOUser}, Verbs: auditlog.WriteVerbs}

// writesSource says, in the output, where writes_per_stack comes from.
const writesSource = "kube-apiserver audit log: create/update/patch/delete requests by the manager's ServiceAccount (" + managerUser + "), by resource; events included; PGO's (" + cluster.PGOUser + ") counted apart"

// writeCounts are writes by resource ("postgresstacks/status", "events", …).
type writeCounts map[string]float64

func (w writeCounts) total() float64 {
	var t float64
	for _, n := range w {
		t += n
	}
	return t
}

func (w writeCounts) minus(before writeCounts) writeCounts {
	out := writeCounts{}
	for k, n := range w {
		if d := n - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (w writeCounts) String() string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %g", k, w[k]))
	}
	return strings.Join(parts, ", ")
}

// auditLog reads the audit log as it grows, keeping running totals.
type auditLog struct {
	path   string
	offset int64
	counts writeCounts
	// millis is the API server's time on those writes, by resource.
	millis writeCounts
	// clusterWritten is when the manager's first write of each
	// PostgresCluster (namespace/name) completed: when it came to exist.
	clusterWritten map[string]time.Time
	// pgo counts PGO's writes, of every resource.
	pgo float64
}

// pgoWrites is how many writes PGO made, as of the last read.
func (a *auditLog) pgoWrites() float64 { return a.pgo }

// clusterWrittenAt is when the manager's first write of the PostgresCluster
// key (namespace/name) completed, by the API server's clock.
func (a *auditLog) clusterWrittenAt(key string) (time.Time, bool) {
	at, ok := a.clusterWritten[key]
	return at, ok
}

// latency is the API server's time on the writes counted so far, by resource.
func (a *auditLog) latency() writeCounts {
	out := writeCounts{}
	for k, ms := range a.millis {
		out[k] = ms
	}
	return out
}

// meanMillis is the mean time per write between two readings of counts and latency.
func meanMillis(countsBefore, countsAfter, millisBefore, millisAfter writeCounts) map[string]float64 {
	out := map[string]float64{}
	spent := millisAfter.minus(millisBefore)
	for resource, n := range countsAfter.minus(countsBefore) {
		if n > 0 {
			out[resource] = round2(spent[resource] / n)
		}
	}
	return out
}

// read counts the complete lines written since the last read and returns
// the running totals.
func (a *auditLog) read() (writeCounts, error) {
	if a.counts == nil {
		a.counts, a.millis, a.clusterWritten = writeCounts{}, writeCounts{}, map[string]time.Time{}
	}
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		return a.snapshot(), nil // nothing logged yet
	}
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek in the audit log: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	// A line still being written waits for the next read.
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return a.snapshot(), nil
	}
	for _, line := range bytes.Split(data[:end], []byte{'\n'}) {
		var ev auditlog.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("decode audit event %q: %w", line, err)
		}
		if ev.Stage != "ResponseComplete" || ev.ObjectRef == nil {
			continue
		}
		if ev.User.Username == cluster.PGOUser {
			a.pgo++
			continue
		}
		resource := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			resource += "/" + ev.ObjectRef.Subresource
		}
		a.counts[resource]++
		if resource == "postgresclusters" {
			key := ev.ObjectRef.Namespace + "/" + ev.ObjectRef.Name
			if _, seen := a.clusterWritten[key]; !seen {
				a.clusterWritten[key] = ev.Completed
			}
		}
		a.millis[resource] += float64(ev.Completed.Sub(ev.Received)) / float64(time.Millisecond)
	}
	a.offset += int64(end + 1)
	return a.snapshot(), nil
}

func (a *auditLog) snapshot() writeCounts {
	out := writeCounts{}
	for k, n := range a.counts {
		out[k] = n
	}
	return out
}
