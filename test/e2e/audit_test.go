package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// pgoUser is the ServiceAccount OLM makes from PGO's CSV, as the API server
// names it.
const pgoUser = "system:serviceaccount:operators:pgo"

// auditPolicy records every write to PostgresClusters, whoever makes it,
// and every request PGO's ServiceAccount makes, at Metadata level.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["` + pgoUser + `"]
- level: Metadata
  resources: [{group: postgres-operator.crunchydata.com, resources: ["postgresclusters", "postgresclusters/status"]}]
  verbs: ["create", "update", "patch", "delete"]
- level: None
`

var auditLogPath string

func writeAuditPolicy(dir string) ([]string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return nil, fmt.Errorf("write the audit policy: %w", err)
	}
	auditLogPath = filepath.Join(dir, "audit.log")
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + auditLogPath, "--audit-log-format=json", "--audit-log-mode=blocking"}, nil
}

type auditEvent struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource, Subresource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus *struct{ Code int } `json:"responseStatus"`
	RequestURI     string              `json:"requestURI"`
}

// checkAudit reads the API server's audit log of the whole run: every
// write of a PostgresCluster's status came from PGO's own ServiceAccount,
// and PGO was never refused (403) anything, so it ran with the RBAC its CSV
// grants and that was enough. run calls it after every test.
func checkAudit() (summary string, problems []string, err error) {
	f, err := os.Open(auditLogPath)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	statusWrites, pgoRequests := 0, 0
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var e auditEvent
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			return "", nil, fmt.Errorf("audit log line: %w", err)
		}
		if e.User.Username == pgoUser {
			pgoRequests++
			if e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
				problems = append(problems, fmt.Sprintf("PGO was forbidden: %s %s", e.Verb, e.RequestURI))
			}
		}
		if e.ObjectRef != nil && e.ObjectRef.Resource == "postgresclusters" && e.ObjectRef.Subresource == "status" {
			statusWrites++
			if e.User.Username != pgoUser {
				problems = append(problems, fmt.Sprintf("%s wrote the status of PostgresCluster %s/%s (%s)", e.User.Username, e.ObjectRef.Namespace, e.ObjectRef.Name, e.Verb))
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return "", nil, err
	}
	if statusWrites == 0 || pgoRequests == 0 {
		problems = append(problems, fmt.Sprintf("the audit log holds %d PostgresCluster status writes and %d requests of PGO's: PGO did not run", statusWrites, pgoRequests))
	}
	return fmt.Sprintf("%d PostgresCluster status writes, all by %s unless listed; %d requests by PGO", statusWrites, pgoUser, pgoRequests), problems, nil
}
