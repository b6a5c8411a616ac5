package pgo

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestPlanMajorUpgrade(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cluster := func(spec map[string]any, mutate ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
		pc := NewPostgresCluster()
		pc.SetName("hippo")
		pc.SetNamespace("team-a")
		pc.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "pgstack", "platform.pgstack.dev/stack": "hippo"})
		pc.Object["spec"] = spec
		for _, m := range mutate {
			m(pc)
		}
		return pc
	}
	backups := map[string]any{"pgbackrest": map[string]any{"repos": []any{map[string]any{"name": "repo1"}}}}
	spec := func(version int64, extra ...any) map[string]any {
		s := map[string]any{"postgresVersion": version, "backups": backups}
		for i := 0; i+1 < len(extra); i += 2 {
			s[extra[i].(string)] = extra[i+1]
		}
		return s
	}
	// ready is a live cluster PGO reports ready at its generation, with a
	// replica-creation backup done.
	ready := func(pc *unstructured.Unstructured) {
		pc.SetGeneration(3)
		pc.Object["status"] = map[string]any{
			"observedGeneration": int64(3),
			"instances":          []any{map[string]any{"name": "instance1", "replicas": int64(1), "readyReplicas": int64(1), "updatedReplicas": int64(1)}},
			"pgbackrest":         map[string]any{"repos": []any{map[string]any{"name": "repo1", "stanzaCreated": true, "replicaCreateBackupComplete": true}}},
			"conditions": []any{
				map[string]any{"type": "PGBackRestReplicaRepoReady", "status": "True", "reason": "StanzaCreated"},
				map[string]any{"type": "PGBackRestReplicaCreate", "status": "True", "reason": "RepoBackupComplete"},
			},
		}
	}
	noBackupYet := func(pc *unstructured.Unstructured) {
		_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "repo1", "stanzaCreated": true}}, "status", "pgbackrest", "repos")
	}
	scheduledAt := func(at time.Time) func(*unstructured.Unstructured) {
		return func(pc *unstructured.Unstructured) {
			_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"repo": "repo1", "type": "full", "succeeded": int64(1),
				"completionTime": at.Format(time.RFC3339)}}, "status", "pgbackrest", "scheduledBackups")
		}
	}
	// stoppedCluster is a cluster PGO has stopped at its generation.
	stoppedCluster := func(pc *unstructured.Unstructured) {
		_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "instance1"}}, "status", "instances")
	}
	allowed := func(name string) func(*unstructured.Unstructured) {
		return func(pc *unstructured.Unstructured) {
			pc.SetAnnotations(map[string]string{AnnotationAllowUpgrade: name})
		}
	}
	images := NewCatalog([]corev1.EnvVar{
		{Name: "RELATED_IMAGE_POSTGRES_16", Value: "pg:16"}, {Name: "RELATED_IMAGE_POSTGRES_17", Value: "pg:17"},
		{Name: EnvPGUpgrade, Value: "upgrade:1"},
	}, nil, false)
	noUpgradeImage := NewCatalog([]corev1.EnvVar{{Name: "RELATED_IMAGE_POSTGRES_16", Value: "pg:16"}, {Name: "RELATED_IMAGE_POSTGRES_17", Value: "pg:17"}}, nil, false)
	running := UpgradeReport{Name: "hippo-pg17", From: 16, To: 17, Reason: "PGUpgradeProgressing", Message: "Upgrade progressing for cluster hippo"}
	succeeded := UpgradeReport{Name: "hippo-pg17", From: 16, To: 17, Succeeded: true, Reason: "PGUpgradeSucceeded"}
	failed := UpgradeReport{Name: "hippo-pg17", From: 16, To: 17, Failed: true, Reason: "PGUpgradeFailed", Message: "Upgrade jobs failed, please check individual pod logs"}
	refused := UpgradeReport{Name: "hippo-pg17", From: 16, To: 17, Refused: true, Reason: "PGClusterPrimaryNotIdentified", Message: "PostgresCluster primary instance not identified"}

	shutdownAnd := func(name string) map[string]any {
		return map[string]any{"shutdown": true, "annotation": name}
	}
	tests := []struct {
		name     string
		live     *unstructured.Unstructured
		desired  *unstructured.Unstructured
		upgrades []UpgradeReport
		settings *platformv1alpha1.MajorUpgrade
		catalog  *Catalog
		busy     string
		// wantVersion and wantImage are what is applied ("" image: none);
		// wantStopped the shutdown and annotation an upgrade sets.
		wantVersion int64
		wantImage   string
		wantStopped map[string]any
		wantForce   bool
		wantCreate  string
		wantStep    platformv1alpha1.MajorUpgradeStep
		// wantFinding names which finding is reported, with its reason and words of its message.
		wantFinding string
		wantReason  string
		wantWords   []string
		wantEvent   string
	}{
		{
			name:        "no PostgresCluster yet: the stack's version",
			desired:     cluster(spec(17)),
			wantVersion: 17,
		},
		{
			name:        "the same version: nothing to do",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(16, "port", int64(5433))),
			wantVersion: 16,
		},
		{
			name:        "a raise on a ready cluster with a backup starts the upgrade at the running version",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(17)),
			catalog:     &images,
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantCreate: "hippo-pg17",
			wantStep:    platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantWords: []string{"from PostgreSQL 16 to 17", "PGUpgrade hippo-pg17", "shutting the cluster down"},
			wantEvent: platformv1alpha1.EventMajorUpgradeStarted,
		},
		{
			name:        "a raise waits for the cluster to be ready",
			live:        cluster(spec(16)),
			desired:     cluster(spec(17)),
			catalog:     &images,
			wantVersion: 16,
			wantFinding: "Pending", wantReason: platformv1alpha1.ReasonMajorUpgradePending,
			wantWords: []string{"from PostgreSQL 16 to 17 waits", "the cluster must be ready first"},
		},
		{
			name:        "a raise waits while a restart or switchover runs",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(17)),
			catalog:     &images,
			busy:        "the restart r1 is running",
			wantVersion: 16,
			wantFinding: "Pending", wantReason: platformv1alpha1.ReasonMajorUpgradePending,
			wantWords: []string{"from PostgreSQL 16 to 17 waits", "the restart r1 is running"},
		},
		{
			name:        "a raise waits for a first backup when backups are on",
			live:        cluster(spec(16), ready, noBackupYet),
			desired:     cluster(spec(17)),
			catalog:     &images,
			wantVersion: 16,
			wantFinding: "Pending", wantReason: platformv1alpha1.ReasonMajorUpgradePending,
			wantWords: []string{"no backup has completed yet"},
		},
		{
			name:        "without backups no backup is asked for",
			live:        cluster(map[string]any{"postgresVersion": int64(16)}, ready, noBackupYet),
			desired:     cluster(map[string]any{"postgresVersion": int64(17)}),
			catalog:     &images,
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantCreate: "hippo-pg17", wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantEvent: platformv1alpha1.EventMajorUpgradeStarted,
		},
		{
			name:        "backupMaxAge: a recent scheduled backup counts",
			live:        cluster(spec(16), ready, scheduledAt(now.Add(-time.Hour))),
			desired:     cluster(spec(17)),
			settings:    &platformv1alpha1.MajorUpgrade{BackupMaxAge: &metav1.Duration{Duration: 2 * time.Hour}},
			catalog:     &images,
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantCreate: "hippo-pg17", wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantEvent: platformv1alpha1.EventMajorUpgradeStarted,
		},
		{
			name:        "backupMaxAge: an old backup refuses, saying when the last one was",
			live:        cluster(spec(16), ready, scheduledAt(now.Add(-3*time.Hour))),
			desired:     cluster(spec(17)),
			settings:    &platformv1alpha1.MajorUpgrade{BackupMaxAge: &metav1.Duration{Duration: 2 * time.Hour}},
			catalog:     &images,
			wantVersion: 16,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradePreflightFailed,
			wantWords: []string{"cannot be upgraded to 17", "the last backup completed at 2026-12-02T09:00:00Z", "within 2h0m0s"},
		},
		{
			name:        "backupMaxAge: the replica-creation backup has no time and does not count",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(17)),
			settings:    &platformv1alpha1.MajorUpgrade{BackupMaxAge: &metav1.Duration{Duration: 2 * time.Hour}},
			catalog:     &images,
			wantVersion: 16,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradePreflightFailed,
			wantWords: []string{"no scheduled or manual backup has completed"},
		},
		{
			name:        "no image for the new version: refused before anything stops",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(18)),
			catalog:     &images,
			wantVersion: 16,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradePreflightFailed,
			wantWords: []string{"cannot be upgraded to 18", "PostgreSQL images for 16, 17", "RELATED_IMAGE_POSTGRES_18 unset"},
		},
		{
			name:        "the stack's own image for the new version passes the image check",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(18, "image", "mirror/pg:18")),
			catalog:     &images,
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg18"), wantCreate: "hippo-pg18", wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantEvent: platformv1alpha1.EventMajorUpgradeStarted,
		},
		{
			name:        "no pg_upgrade image: refused unless the stack names one",
			live:        cluster(spec(16), ready),
			desired:     cluster(spec(17)),
			catalog:     &noUpgradeImage,
			wantVersion: 16,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradePreflightFailed,
			wantWords: []string{"no pg_upgrade image (RELATED_IMAGE_PGUPGRADE unset)", "spec.postgres.upgrade.image"},
		},
		{
			name:        "CopyFileRange needs pg_upgrade 17",
			live:        cluster(spec(15), ready),
			desired:     cluster(spec(16)),
			settings:    &platformv1alpha1.MajorUpgrade{TransferMethod: "CopyFileRange"},
			wantVersion: 15,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradePreflightFailed,
			wantWords: []string{"CopyFileRange needs pg_upgrade 17"},
		},
		{
			name:        "the running image waits with the running version",
			live:        cluster(spec(16, "image", "mirror/pg:16"), ready, noBackupYet),
			desired:     cluster(spec(17, "image", "mirror/pg:17")),
			wantVersion: 16, wantImage: "mirror/pg:16",
			wantFinding: "Pending", wantReason: platformv1alpha1.ReasonMajorUpgradePending,
		},
		{
			name:        "under way: the cluster stays stopped and annotated, shutting down",
			live:        cluster(spec(16, "shutdown", true), ready, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{running},
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantWords: []string{"PGO is shutting the cluster down", "PGUpgradeProgressing"},
		},
		{
			name:        "under way: once PGO has stopped every instance, pg_upgrade runs",
			live:        cluster(spec(16, "shutdown", true), ready, stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{running},
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantStep: platformv1alpha1.UpgradeRunning,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantWords: []string{"PGO is running pg_upgrade"},
		},
		{
			name:        "under way, the version set back: the upgrade runs to its end and the change is held",
			live:        cluster(spec(16, "shutdown", true), ready, allowed("hippo-pg17")),
			desired:     cluster(spec(16)),
			upgrades:    []UpgradeReport{running},
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorVersionChangeHeld,
			wantWords: []string{"has started (PGUpgrade hippo-pg17) and runs to its end"},
		},
		{
			name:        "succeeded: the new version and image, shutdown and the annotation dropped",
			live:        cluster(spec(16, "shutdown", true, "image", "mirror/pg:16"), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17, "image", "mirror/pg:17")),
			upgrades:    []UpgradeReport{succeeded},
			wantVersion: 17, wantImage: "mirror/pg:17", wantForce: true, wantStep: platformv1alpha1.UpgradeSucceeded,
			wantEvent: platformv1alpha1.EventMajorUpgradeSucceeded,
		},
		{
			name:        "succeeded, the stack now asking for another version: the upgraded one starts, the change is held",
			live:        cluster(spec(16, "shutdown", true, "image", "mirror/pg:16"), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(18, "image", "mirror/pg:18")),
			upgrades:    []UpgradeReport{succeeded},
			wantVersion: 17, wantForce: true, wantStep: platformv1alpha1.UpgradeSucceeded,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorVersionChangeHeld,
			wantEvent: platformv1alpha1.EventMajorUpgradeSucceeded,
		},
		{
			name:        "after: the last upgrade is reported, nothing else",
			live:        cluster(spec(17), ready),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{succeeded},
			wantVersion: 17, wantStep: platformv1alpha1.UpgradeSucceeded,
		},
		{
			name:        "after, the annotation still there: applied again to drop it",
			live:        cluster(spec(17), ready, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{succeeded},
			wantVersion: 17, wantForce: true, wantStep: platformv1alpha1.UpgradeSucceeded,
		},
		{
			name:        "failed with Link: stays stopped, Failed says how to go on",
			live:        cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{failed},
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantStep: platformv1alpha1.UpgradeFailed,
			wantFinding: "Failed", wantReason: platformv1alpha1.ReasonMajorUpgradeFailed,
			wantWords: []string{"failed (PGUpgradeFailed: Upgrade jobs failed", "stays shut down", "startOldVersionOnFailure", "delete PGUpgrade hippo-pg17 to try again"},
		},
		{
			name:        "refused by PGO: stays stopped, with PGO's reason",
			live:        cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{refused},
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantStep: platformv1alpha1.UpgradeFailed,
			wantFinding: "Failed", wantReason: platformv1alpha1.ReasonMajorUpgradeFailed,
			wantWords: []string{"PGO will not run the upgrade", "PGClusterPrimaryNotIdentified"},
		},
		{
			name:        "failed with Copy: started again on the old version, Stalled",
			live:        cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{failed},
			settings:    &platformv1alpha1.MajorUpgrade{TransferMethod: platformv1alpha1.TransferCopy},
			wantVersion: 16, wantForce: true, wantStep: platformv1alpha1.UpgradeFailed,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradeFailed,
			wantWords: []string{"runs PostgreSQL 16 again", "Delete PGUpgrade hippo-pg17 to try again"},
		},
		{
			name:        "failed with Link and startOldVersionOnFailure: started again on the old version",
			live:        cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(17)),
			upgrades:    []UpgradeReport{failed},
			settings:    &platformv1alpha1.MajorUpgrade{StartOldVersionOnFailure: true},
			wantVersion: 16, wantForce: true, wantStep: platformv1alpha1.UpgradeFailed,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorUpgradeFailed,
		},
		{
			name: "the PGUpgrade deleted to retry: the stopped cluster is not started, a new one is made",
			live: cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17"), func(pc *unstructured.Unstructured) {
				noBackupYet(pc)
				_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "repo1", "replicaCreateBackupComplete": true}}, "status", "pgbackrest", "repos")
			}),
			desired:     cluster(spec(17)),
			catalog:     &images,
			wantVersion: 16, wantStopped: shutdownAnd("hippo-pg17"), wantForce: true, wantCreate: "hippo-pg17", wantStep: platformv1alpha1.UpgradeShuttingDown,
			wantFinding: "Down", wantReason: platformv1alpha1.ReasonMajorUpgradeRunning,
			wantEvent: platformv1alpha1.EventMajorUpgradeStarted,
		},
		{
			name:        "the PGUpgrade deleted and the version set back: started again on the old version",
			live:        cluster(spec(16, "shutdown", true), stoppedCluster, allowed("hippo-pg17")),
			desired:     cluster(spec(16)),
			wantVersion: 16, wantForce: true,
		},
		{
			name:        "a lower version is held: no downgrade",
			live:        cluster(spec(17), ready),
			desired:     cluster(spec(16)),
			wantVersion: 17,
			wantFinding: "Held", wantReason: platformv1alpha1.ReasonMajorVersionChangeHeld,
			wantWords: []string{"PostgreSQL 17 runs", "cannot move down to 16", "set spec.postgres.version to 17"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desiredBefore := tt.desired.DeepCopy()
			plan := PlanMajorUpgrade(UpgradeInput{Live: tt.live, Desired: tt.desired, Upgrades: tt.upgrades, Settings: tt.settings, Busy: tt.busy,
				Images: tt.catalog, PGOVersion: "5.8.9", Now: now})
			if !equality.Semantic.DeepEqual(desiredBefore, tt.desired) {
				t.Errorf("the rendered PostgresCluster was changed in place")
			}
			if v := version(plan.Apply); v != tt.wantVersion || plan.Running != tt.wantVersion {
				t.Errorf("applies postgresVersion %d (Running %d), want %d", v, plan.Running, tt.wantVersion)
			}
			if image, _, _ := unstructured.NestedString(plan.Apply.Object, "spec", "image"); image != tt.wantImage {
				t.Errorf("applies image %q, want %q", image, tt.wantImage)
			}
			shutdown, _, _ := unstructured.NestedBool(plan.Apply.Object, "spec", "shutdown")
			annotation, annotated := plan.Apply.GetAnnotations()[AnnotationAllowUpgrade]
			if tt.wantStopped != nil {
				if !shutdown || annotation != tt.wantStopped["annotation"] {
					t.Errorf("applies shutdown %v and allow-upgrade %q, want true and %q", shutdown, annotation, tt.wantStopped["annotation"])
				}
			} else if annotated || (shutdown && tt.live != nil && !specHas(tt.desired, "shutdown")) {
				t.Errorf("applies shutdown %v and allow-upgrade %q, want neither", shutdown, annotation)
			}
			if plan.Force != tt.wantForce {
				t.Errorf("Force = %v, want %v", plan.Force, tt.wantForce)
			}
			switch {
			case tt.wantCreate == "" && plan.Create != nil:
				t.Errorf("creates PGUpgrade %s, want none", plan.Create.GetName())
			case tt.wantCreate != "":
				if plan.Create == nil {
					t.Fatalf("creates no PGUpgrade, want %s", tt.wantCreate)
				}
				checkPGUpgrade(t, plan.Create, tt.wantCreate, tt.live, tt.desired, tt.settings)
			}
			if got := step(plan.Report); got != tt.wantStep {
				t.Errorf("reports step %q, want %q", got, tt.wantStep)
			}
			findings := map[string]*Finding{"Held": plan.Held, "Pending": plan.Pending, "Down": plan.Down, "Failed": plan.Failed}
			for kind, f := range findings {
				if kind != tt.wantFinding {
					if f != nil && !(kind == "Down" && tt.wantFinding == "Held") {
						t.Errorf("reports %s %+v, want none", kind, *f)
					}
					continue
				}
				if f == nil {
					t.Fatalf("reports no %s, want %s", kind, tt.wantReason)
				}
				if f.Reason != tt.wantReason {
					t.Errorf("%s reason %q, want %q", kind, f.Reason, tt.wantReason)
				}
				for _, w := range tt.wantWords {
					if !strings.Contains(f.Message, w) {
						t.Errorf("%s message %q lacks %q", kind, f.Message, w)
					}
				}
			}
			if plan.Event.Reason != tt.wantEvent {
				t.Errorf("event %q, want %q", plan.Event.Reason, tt.wantEvent)
			}
		})
	}
}

func specHas(pc *unstructured.Unstructured, field string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(pc.Object, "spec", field)
	return ok
}

func step(r *platformv1alpha1.MajorUpgradeStatus) platformv1alpha1.MajorUpgradeStep {
	if r == nil {
		return ""
	}
	return r.Step
}

// checkPGUpgrade checks a PGUpgrade as PGO's CRD reads it: the cluster's
// name and both versions, the stack's labels, and the settings passed on.
func checkPGUpgrade(t *testing.T, u *unstructured.Unstructured, name string, live, desired *unstructured.Unstructured, settings *platformv1alpha1.MajorUpgrade) {
	t.Helper()
	if u.GroupVersionKind() != PGUpgradeGVK || u.GetName() != name || u.GetNamespace() != live.GetNamespace() {
		t.Errorf("PGUpgrade is %s %s/%s, want %s team-a/%s", u.GroupVersionKind(), u.GetNamespace(), u.GetName(), PGUpgradeGVK, name)
	}
	if !equality.Semantic.DeepEqual(u.GetLabels(), desired.GetLabels()) {
		t.Errorf("PGUpgrade labels %v, want the cluster's %v", u.GetLabels(), desired.GetLabels())
	}
	clusterName, _, _ := unstructured.NestedString(u.Object, "spec", "postgresClusterName")
	from, _, _ := unstructured.NestedInt64(u.Object, "spec", "fromPostgresVersion")
	to, _, _ := unstructured.NestedInt64(u.Object, "spec", "toPostgresVersion")
	if clusterName != live.GetName() || from != version(live) || to != version(desired) {
		t.Errorf("PGUpgrade spec is %s %d->%d, want %s %d->%d", clusterName, from, to, live.GetName(), version(live), version(desired))
	}
	method, _, _ := unstructured.NestedString(u.Object, "spec", "transferMethod")
	image, _, _ := unstructured.NestedString(u.Object, "spec", "image")
	if settings == nil {
		settings = &platformv1alpha1.MajorUpgrade{}
	}
	if method != string(settings.TransferMethod) || image != settings.Image {
		t.Errorf("PGUpgrade transferMethod %q image %q, want %q %q", method, image, settings.TransferMethod, settings.Image)
	}
}

func TestReadPGUpgrade(t *testing.T) {
	withConditions := func(conds ...map[string]any) *unstructured.Unstructured {
		u := NewPGUpgrade()
		u.SetName("hippo-pg17")
		u.Object["spec"] = map[string]any{"postgresClusterName": "hippo", "fromPostgresVersion": int64(16), "toPostgresVersion": int64(17)}
		list := []any{}
		for _, c := range conds {
			list = append(list, c)
		}
		u.Object["status"] = map[string]any{"conditions": list}
		return u
	}
	progressing := func(status, reason string) map[string]any {
		return map[string]any{"type": "Progressing", "status": status, "reason": reason, "message": reason + " said"}
	}
	succeeded := func(status, reason string) map[string]any {
		return map[string]any{"type": "Succeeded", "status": status, "reason": reason, "message": reason + " said"}
	}
	tests := []struct {
		name string
		u    *unstructured.Unstructured
		want UpgradeReport
	}{
		{"not seen by PGO yet", withConditions(), UpgradeReport{}},
		{"progressing", withConditions(progressing("True", "PGUpgradeProgressing")), UpgradeReport{Reason: "PGUpgradeProgressing", Message: "PGUpgradeProgressing said"}},
		{"waiting for the shutdown is no refusal", withConditions(progressing("False", "PGClusterNotShutdown")), UpgradeReport{Reason: "PGClusterNotShutdown", Message: "PGClusterNotShutdown said"}},
		{"an invalid upgrade is refused", withConditions(progressing("False", "PGUpgradeInvalid")), UpgradeReport{Refused: true, Reason: "PGUpgradeInvalid", Message: "PGUpgradeInvalid said"}},
		{"succeeded", withConditions(progressing("False", "PGUpgradeCompleted"), succeeded("True", "PGUpgradeSucceeded")), UpgradeReport{Succeeded: true, Reason: "PGUpgradeSucceeded", Message: "PGUpgradeSucceeded said"}},
		{"failed", withConditions(progressing("True", "PGUpgradeProgressing"), succeeded("False", "PGUpgradeFailed")), UpgradeReport{Failed: true, Reason: "PGUpgradeFailed", Message: "PGUpgradeFailed said"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReadPGUpgrade(tt.u)
			tt.want.Name, tt.want.From, tt.want.To = "hippo-pg17", 16, 17
			if got != tt.want {
				t.Errorf("ReadPGUpgrade = %+v, want %+v", got, tt.want)
			}
		})
	}
}
