// Package auditlog turns on kube-apiserver's audit log for a local cluster
// and reads it back, so a suite can say who wrote what and who was refused.
package auditlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// WriteVerbs are the verbs that change objects.
var WriteVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// Rule picks the requests to log: those by any of Users, with any of Verbs,
// on any of Resources; a field left empty matches every request.
type Rule struct {
	Users     []string         `json:"users,omitempty"`
	Verbs     []string         `json:"verbs,omitempty"`
	Resources []GroupResources `json:"resources,omitempty"`
}

// GroupResources names resources ("postgresclusters/status" for a
// subresource) of one API group.
type GroupResources struct {
	Group     string   `json:"group"`
	Resources []string `json:"resources"`
}

// policy is the audit.k8s.io/v1 Policy Enable writes.
type policy struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	OmitStages []string     `json:"omitStages"`
	Rules      []policyRule `json:"rules"`
}

type policyRule struct {
	Level string `json:"level"`
	Rule
}

// Event is the part of an audit event the suites read.
type Event struct {
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource, Subresource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus *struct{ Code int } `json:"responseStatus"`
	RequestURI     string              `json:"requestURI"`
	Received       time.Time           `json:"requestReceivedTimestamp"`
	// Completed is when the API server finished the request.
	Completed time.Time `json:"stageTimestamp"`
}

// Forbidden says whether the API server refused the request for lack of RBAC.
func (e Event) Forbidden() bool { return e.ResponseStatus != nil && e.ResponseStatus.Code == 403 }

// Log is an audit log a cluster writes.
type Log struct{ Path string }

// Enable writes into dir an audit policy that logs, at Metadata level, the
// requests any of rules picks and nothing else, and returns the
// kube-apiserver flags that log by it, as JSON, to dir/audit.log. Only a
// request's ResponseComplete (or Panic) stage is logged, so each request is
// one event.
func Enable(dir string, rules ...Rule) (Log, []string, error) {
	p := policy{APIVersion: "audit.k8s.io/v1", Kind: "Policy", OmitStages: []string{"RequestReceived", "ResponseStarted"}}
	for _, r := range rules {
		p.Rules = append(p.Rules, policyRule{Level: "Metadata", Rule: r})
	}
	p.Rules = append(p.Rules, policyRule{Level: "None"})
	text, err := yaml.Marshal(p)
	if err != nil {
		return Log{}, nil, err
	}
	path := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return Log{}, nil, fmt.Errorf("write the audit policy: %w", err)
	}
	l := Log{Path: filepath.Join(dir, "audit.log")}
	return l, []string{"--audit-policy-file=" + path, "--audit-log-path=" + l.Path, "--audit-log-format=json", "--audit-log-mode=blocking",
		// Never rotated: readers follow one file by offset, and the API
		// server otherwise starts a new one every 100 MB (its log library's
		// default), which a 1,000-stack bench reaches in minutes.
		"--audit-log-maxsize=1000000"}, nil
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
