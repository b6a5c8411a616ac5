// Package argocd_test runs health.lua the way Argo CD does, in gopher-lua with
// the object as the global obj, on PostgresStacks whose status comes from the
// controller's own status.Compute, and checks that Argo CD and Flux's kstatus
// read every scenario the same way.
package argocd_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/status"
)

// healthKey is the argocd-cm key Argo CD reads the script from.
const healthKey = "resource.customizations.health.platform.pgstack.dev_PostgresStack"

var (
	installed = status.Operator{Subscription: "postgresql", InstalledCSV: "postgresoperator.v5.8.9", CurrentCSV: "postgresoperator.v5.8.9", CSVPhase: "Succeeded"}

	readyCluster = status.Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{
		Ready: true, Reason: pgo.ReasonReady, Message: "1 of 1 PostgreSQL instances ready", ReadyInstances: 1, Instances: 1}}

	now = metav1.NewTime(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
)

// stackGeneration is metadata.generation of every stack in the scenarios.
const stackGeneration = 3

// scenario is one PostgresStack as a cluster would hold it.
type scenario struct {
	name string
	// observations feed status.Compute; nil leaves the stack without status.
	observations *status.Observations
	deleting     bool

	wantArgo      string
	wantKstatus   kstatus.Status
	wantInMessage string
	// kstatusDisagrees says why kstatus reads this scenario differently from
	// Argo CD; empty when the two agree.
	kstatusDisagrees string
}

func scenarios() []scenario {
	upgradeRefused := installed
	upgradeRefused.CurrentCSV, upgradeRefused.Plan, upgradeRefused.PlanPhase = "postgresoperator.v5.9.0", "install-2", "RequiresApproval"
	upgradeRefused.Decision = &policy.Decision{Verdict: policy.Refuse, Reason: policy.ReasonOutsideVersionRange,
		Message: `version 5.9.0 is outside stack team-a/hippo's allowed range ">=5.7.0 <5.9.0"`, Version: "5.9.0"}

	return []scenario{
		{
			name:         "everything ready",
			observations: &status.Observations{Generation: stackGeneration, Operator: installed, Cluster: readyCluster},
			wantArgo:     "Healthy", wantKstatus: kstatus.CurrentStatus, wantInMessage: "PGO 5.8.9 is installed",
		},
		{
			name: "first install waits for manual approval",
			observations: &status.Observations{Generation: stackGeneration, Cluster: status.Cluster{Name: "hippo"}, Operator: status.Operator{
				Subscription: "postgresql", CurrentCSV: "postgresoperator.v5.8.9", Plan: "install-1", PlanPhase: "RequiresApproval",
				Decision: &policy.Decision{Verdict: policy.Wait, Reason: policy.ReasonManualApprovalRequired,
					Message: "version 5.8.9 waits for a person to approve install plan install-1 (stack team-a/hippo asks for Manual approval)", Version: "5.8.9"},
			}},
			wantArgo: "Degraded", wantKstatus: kstatus.FailedStatus, wantInMessage: "waits for a person to approve install plan install-1",
		},
		{
			name: "CSV installing",
			observations: &status.Observations{Generation: stackGeneration, Cluster: status.Cluster{Name: "hippo"}, Operator: status.Operator{
				Subscription: "postgresql", InstalledCSV: "postgresoperator.v5.8.9", CSVPhase: "Installing", CSVMessage: "waiting for install components to report healthy"}},
			wantArgo: "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "postgresoperator.v5.8.9 is in phase Installing",
		},
		{
			name: "OLM missing",
			observations: &status.Observations{Generation: stackGeneration, Cluster: status.Cluster{Name: "hippo"}, Operator: status.Operator{
				Problem: &status.Problem{Reason: platformv1alpha1.ReasonOLMNotInstalled, Message: "OLM is not installed: the operators.coreos.com CRDs are not served"}}},
			wantArgo: "Degraded", wantKstatus: kstatus.FailedStatus, wantInMessage: "OLM is not installed",
		},
		{
			name:         "upgrade refused outside the version range while running",
			observations: &status.Observations{Generation: stackGeneration, Operator: upgradeRefused, Cluster: readyCluster},
			wantArgo:     "Healthy", wantKstatus: kstatus.CurrentStatus, wantInMessage: "the PostgresCluster is ready",
		},
		{
			// The database serves, but the spec asked for is not reached until
			// a person acts: Degraded and Failed, not Healthy.
			name: "a major version change held while the cluster runs",
			observations: &status.Observations{Generation: stackGeneration, Operator: installed, Cluster: func() status.Cluster {
				c := readyCluster
				c.Held = &status.Problem{Reason: platformv1alpha1.ReasonMajorVersionChangeHeld,
					Message: "PostgreSQL 17 runs in PostgresCluster hippo; its data cannot move down to 16 (PostgreSQL has no major downgrade): set spec.postgres.version to 17"}
				return c
			}()},
			wantArgo: "Degraded", wantKstatus: kstatus.FailedStatus, wantInMessage: "set spec.postgres.version to 17",
		},
		{
			// The database serves, and the raised version is on its way.
			name: "a major upgrade waiting for its first backup",
			observations: &status.Observations{Generation: stackGeneration, Operator: installed, Cluster: func() status.Cluster {
				c := readyCluster
				c.Pending = &status.Problem{Reason: platformv1alpha1.ReasonMajorUpgradePending,
					Message: "the upgrade of PostgresCluster hippo from PostgreSQL 16 to 17 waits: no backup has completed yet"}
				return c
			}()},
			wantArgo: "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "no backup has completed yet",
		},
		{
			name: "a major upgrade under way, the cluster shut down",
			observations: &status.Observations{Generation: stackGeneration, Operator: installed, Cluster: func() status.Cluster {
				c := readyCluster
				c.Down = &status.Problem{Reason: platformv1alpha1.ReasonMajorUpgradeRunning,
					Message: "upgrading PostgresCluster hippo from PostgreSQL 16 to 17 with PGUpgrade hippo-pg17: PGO is running pg_upgrade"}
				return c
			}()},
			wantArgo: "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "PGO is running pg_upgrade",
		},
		{
			name: "a major upgrade failed, the cluster kept shut down",
			observations: &status.Observations{Generation: stackGeneration, Operator: installed, Cluster: func() status.Cluster {
				c := readyCluster
				c.Failed = &status.Problem{Reason: platformv1alpha1.ReasonMajorUpgradeFailed,
					Message: "PGO's upgrade of PostgresCluster hippo from PostgreSQL 16 to 17 failed (PGUpgradeFailed: Upgrade jobs failed); the cluster stays shut down."}
				return c
			}()},
			wantArgo: "Degraded", wantKstatus: kstatus.FailedStatus, wantInMessage: "the cluster stays shut down",
		},
		{
			name:         "deleting",
			observations: &status.Observations{Generation: stackGeneration, Deleting: true, Operator: installed, Cluster: readyCluster},
			deleting:     true,
			wantArgo:     "Progressing", wantKstatus: kstatus.TerminatingStatus, wantInMessage: "being deleted",
		},
		{
			name:         "ready at a generation not yet observed",
			observations: &status.Observations{Generation: stackGeneration - 1, Operator: installed, Cluster: readyCluster},
			wantArgo:     "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "observe generation 3",
		},
		{
			name: "stalled at a generation not yet observed",
			observations: &status.Observations{Generation: stackGeneration - 1, Cluster: status.Cluster{Name: "hippo"}, Operator: status.Operator{
				Problem: &status.Problem{Reason: platformv1alpha1.ReasonOLMNotInstalled, Message: "OLM is not installed"}}},
			wantArgo: "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "observe generation 3",
		},
		{
			// The API server defaults a new stack's status to observedGeneration -1.
			name:     "just created, pgstack has not reported yet",
			wantArgo: "Progressing", wantKstatus: kstatus.InProgressStatus, wantInMessage: "Waiting for pgstack to report",
		},
	}
}

// object is the stack as the API server returns it, as an unstructured map.
func (s scenario) object(t *testing.T) map[string]any {
	t.Helper()
	stack := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{
		Name: "hippo", Namespace: "team-a", Generation: stackGeneration, Finalizers: []string{"platform.pgstack.dev/finalizer"}}}
	stack.SetGroupVersionKind(platformv1alpha1.GroupVersion.WithKind("PostgresStack"))
	if s.deleting {
		stack.DeletionTimestamp = &now
	}
	if s.observations != nil {
		stack.Status = status.Compute(platformv1alpha1.PostgresStackStatus{}, *s.observations, now)
	} else {
		stack.Status.ObservedGeneration = -1 // the CRD's default: not observed yet
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(stack)
	if err != nil {
		t.Fatalf("convert %s: %v", s.name, err)
	}
	return obj
}

func TestArgoCDHealthAndKstatusAgree(t *testing.T) {
	script := readScript(t)
	// Argo CD's three verdicts and the kstatus statuses Flux acts on the same way.
	agree := map[string][]kstatus.Status{
		"Healthy":     {kstatus.CurrentStatus},
		"Degraded":    {kstatus.FailedStatus},
		"Progressing": {kstatus.InProgressStatus, kstatus.TerminatingStatus},
	}
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			obj := s.object(t)

			health, message := argoHealth(t, script, obj)
			if health != s.wantArgo {
				t.Errorf("Argo CD health = %s (%q), want %s", health, message, s.wantArgo)
			}
			if !strings.Contains(message, s.wantInMessage) {
				t.Errorf("Argo CD message %q does not mention %q", message, s.wantInMessage)
			}

			res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			if res.Status != s.wantKstatus {
				t.Errorf("kstatus = %s (%s), want %s", res.Status, res.Message, s.wantKstatus)
			}
			if agrees := slices.Contains(agree[health], res.Status); agrees != (s.kstatusDisagrees == "") {
				t.Errorf("Argo CD says %s and kstatus says %s; known disagreement: %q", health, res.Status, s.kstatusDisagrees)
			}
		})
	}
}

// The snippet people install must carry the tested script, byte for byte.
func TestArgoCDConfigMapPatchCarriesTheScript(t *testing.T) {
	data := configMapPatch(t)
	if got := data[healthKey]; got != readScript(t) {
		t.Errorf("argocd-cm-patch.yaml's %s differs from health.lua; copy health.lua into it", healthKey)
	}
	if len(data) != 2 || data[actionsKey] == "" {
		t.Errorf("patch sets %d keys, want only %s and %s", len(data), healthKey, actionsKey)
	}
}

// configMapPatch is the data argocd-cm-patch.yaml sets on argocd-cm.
func configMapPatch(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("argocd-cm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		t.Fatalf("argocd-cm-patch.yaml: %v", err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Errorf("patch targets %s %s %s, want v1 ConfigMap argocd-cm", cm.APIVersion, cm.Kind, cm.Metadata.Name)
	}
	return cm.Data
}

func readScript(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("health.lua")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// argoHealth runs a health script as Argo CD does: obj is a global table, the
// script returns a table with status and message.
func argoHealth(t *testing.T, script string, obj map[string]any) (string, string) {
	t.Helper()
	l := lua.NewState()
	defer l.Close()
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", l.Get(-1).Type())
	}
	health := lua.LVAsString(result.RawGetString("status"))
	switch health {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Fatalf("health.lua returned status %q, which Argo CD does not know", health)
	}
	return health, lua.LVAsString(result.RawGetString("message"))
}

// toLua converts a decoded object into Lua values the way Argo CD does:
// objects and arrays become tables (arrays 1-based), numbers become numbers.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case map[string]any:
		table := l.NewTable()
		for k, child := range x {
			table.RawSetString(k, toLua(l, child))
		}
		return table
	case []any:
		table := l.NewTable()
		for i, child := range x {
			table.RawSetInt(i+1, toLua(l, child))
		}
		return table
	default:
		panic(fmt.Sprintf("toLua: unexpected %T", v))
	}
}
