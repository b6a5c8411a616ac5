// Package auditlog turns on kube-apiserver's audit log for a local cluster
// and reads it back, so a suite can say who wrote what and who was refused.
package auditlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Event is the part of an audit event the suites read.
type Event struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource, Subresource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus *struct{ Code int } `json:"responseStatus"`
	RequestURI     string              `json:"requestURI"`
}

// Forbidden says whether the API server refused the request for lack of RBAC.
func (e Event) Forbidden() bool { return e.ResponseStatus != nil && e.ResponseStatus.Code == 403 }

// Log is an audit log a cluster writes.
type Log struct{ Path string }

// Enable writes policy (an audit.k8s.io/v1 Policy) into dir and returns the
// kube-apiserver flags that log by it, as JSON, to dir/audit.log.
func Enable(dir, policy string) (Log, []string, error) {
	path := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		return Log{}, nil, fmt.Errorf("write the audit policy: %w", err)
	}
	l := Log{Path: filepath.Join(dir, "audit.log")}
	return l, []string{"--audit-policy-file=" + path, "--audit-log-path=" + l.Path, "--audit-log-format=json", "--audit-log-mode=blocking"}, nil
}

// Events reads every event logged so far.
func (l Log) Events() ([]Event, error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []Event
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var e Event
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", l.Path, err)
		}
		events = append(events, e)
	}
	return events, scanner.Err()
}
