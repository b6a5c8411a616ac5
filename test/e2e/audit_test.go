package e2e

import (
	"fmt"

	"github.com/pgstack/pgstack/test/auditlog"
	"github.com/pgstack/pgstack/test/cluster"
)

// pgoUser is PGO's ServiceAccount, as the API server names it.
const pgoUser = cluster.PGOUser

// auditRules log every write to PostgresClusters, whoever makes it, and
// every request PGO's ServiceAccount makes.
var auditRules = []auditlog.Rule{
	{Users: []string{pgoUser}},
	{Verbs: auditlog.WriteVerbs, Resources: []auditlog.GroupResources{
		{Group: "postgres-operator.crunchydata.com", Resources: []string{"postgresclusters", "postgresclusters/status"}},
	}},
}

// checkAudit reads the API server's audit log of the whole run: every
// write of a PostgresCluster's status came from PGO's own ServiceAccount,
// and PGO was never refused (403) anything, so it ran with the RBAC its CSV
// grants and that was enough. run calls it after every test.
func checkAudit(log auditlog.Log) (summary string, problems []string, err error) {
	events, err := log.Events()
	if err != nil {
		return "", nil, err
	}
	statusWrites, pgoRequests := 0, 0
	for _, e := range events {
		if e.User.Username == pgoUser {
			pgoRequests++
			if e.Forbidden() {
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
	if statusWrites == 0 || pgoRequests == 0 {
		problems = append(problems, fmt.Sprintf("the audit log holds %d PostgresCluster status writes and %d requests of PGO's: PGO did not run", statusWrites, pgoRequests))
	}
	return fmt.Sprintf("%d PostgresCluster status writes, all by %s unless listed; %d requests by PGO", statusWrites, pgoUser, pgoRequests), problems, nil
}
