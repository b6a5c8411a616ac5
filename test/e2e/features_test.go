package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/cluster"
)

// featurePodStarts: in namespace feat-upgrade-fail the pod of PGO's
// pg_upgrade Job fails, as pg_upgrade does on data it cannot upgrade; PGO
// gives the Job no retry (backoffLimit 0, internal/controller/pgupgrade/jobs.go:189).
var featurePodStarts = []cluster.PodStart{
	{Match: `(.metadata.namespace == "feat-upgrade-fail") and (.metadata.labels["postgres-operator.crunchydata.com/role"] == "pgupgrade")`, Fails: true},
	// In feat-backup-fail every pod of PGO's scheduled backup Jobs fails,
	// as pgbackrest backup does when its repository is unreachable.
	{Match: `(.metadata.namespace == "feat-backup-fail") and (.metadata.labels["postgres-operator.crunchydata.com/pgbackrest-cronjob"] != null)`, Fails: true},
}

// TestStacksOnRealPGO drives PGO's features through stacks and judges each
// by what PGO's own manager writes: nothing here moves a PostgresCluster's
// status. Each stack has a namespace of its own; the first to need the
// operator installs it (default policy: Automatic).
func TestStacksOnRealPGO(t *testing.T) {
	ctx := context.Background()
	no := false

	t.Run("a stack without backups is Ready with no pgBackRest at all", func(t *testing.T) {
		scratch := createStack(t, "feat-scratch", "scratch", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Enabled = &no
		})
		waitCondition(t, scratch, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		pc := postgresCluster(t, scratch)
		if _, found, _ := unstructured.NestedMap(pc.Object, "spec", "backups"); found {
			t.Errorf("spec.backups rendered for a stack with backups off")
		}
		if c := pgoCondition(pc, "PGBackRestReplicaRepoReady"); c != nil {
			t.Errorf("PGO reports pgBackRest (%v) for a cluster without backups", c)
		}
	})

	t.Run("a switch to Delete and a delete at once: PGO deletes the database as Delete asks, or it stays unowned", func(t *testing.T) {
		yak := createStack(t, "feat-delete-race", "yak", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Enabled = &no
		})
		key := client.ObjectKeyFromObject(yak)
		eventually(t, "yak's PostgresCluster applied", func() (bool, error) {
			err := k8s.Get(ctx, key, pgo.NewPostgresCluster())
			return err == nil, client.IgnoreNotFound(err)
		})
		update(t, yak, func(s *platformv1alpha1.PostgresStack) { s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete })
		must(t, k8s.Delete(ctx, yak))
		waits.StackGone(t, yak)
		// Owned by the gone stack (the delete raced the finalizer,
		// kubernetes/kubernetes#77988) is not an end: the garbage collector
		// deletes it, and PGO's finalizer takes the cluster down.
		var end string
		eventually(t, "yak's PostgresCluster deleted, or left without an owner", func() (bool, error) {
			pc := pgo.NewPostgresCluster()
			switch err := k8s.Get(ctx, key, pc); {
			case apierrors.IsNotFound(err):
				end = "deleted as Delete asks"
				return true, nil
			case err != nil:
				return false, err
			case pc.GetDeletionTimestamp().IsZero() && len(pc.GetOwnerReferences()) == 0:
				end = "left in place: the delete came before pgstack saw the switch"
				return true, nil
			}
			return false, nil
		})
		t.Logf("yak's PostgresCluster: %s", end)
	})

	t.Run("raising the major version runs PGO's PGUpgrade and starts the cluster on the new version", func(t *testing.T) {
		two := int32(2)
		upgraded := createStack(t, "feat-upgrade", "upgraded", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Version = 16
			s.Spec.Postgres.Replicas = &two
		})
		waitCondition(t, upgraded, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		// Every change of the cluster's StatefulSets and of its PGUpgrade,
		// from before the raise, with the API server's resourceVersions (one
		// etcd revision counter orders writes across kinds).
		seen := recordUpgrade(t, upgraded.Namespace)
		update(t, upgraded, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })

		// PGO's own controller runs the PGUpgrade: its Job on the primary's
		// volume, a remove-data Job for the replica, then its status.
		eventually(t, "PGO reports PGUpgrade upgraded-pg17 Succeeded", func() (bool, error) {
			u := pgo.NewPGUpgrade()
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: upgraded.Namespace, Name: "upgraded-pg17"}, u); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return pgo.ReadPGUpgrade(u).Succeeded, nil
		})
		waitCondition(t, upgraded, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		got := getStack(t, upgraded)
		if up := got.Status.Cluster.MajorUpgrade; up == nil || up.Step != platformv1alpha1.UpgradeSucceeded || up.FromVersion != 16 || up.ToVersion != 17 {
			t.Errorf("status.cluster.majorUpgrade = %+v, want 16 -> 17 Succeeded", up)
		}
		if got.Status.Cluster.PostgresVersion != 17 {
			t.Errorf("status.cluster.postgresVersion = %d, want 17", got.Status.Cluster.PostgresVersion)
		}
		pc := postgresCluster(t, upgraded)
		version, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
		statusVersion, _, _ := unstructured.NestedInt64(pc.Object, "status", "postgresVersion")
		shutdown, _, _ := unstructured.NestedBool(pc.Object, "spec", "shutdown")
		if version != 17 || statusVersion != 17 || shutdown || pc.GetAnnotations()[pgo.AnnotationAllowUpgrade] != "" {
			t.Errorf("PostgresCluster after the upgrade: postgresVersion %d, PGO's status.postgresVersion %d, shutdown %v, allow-upgrade %q; want 17, 17, false, none",
				version, statusVersion, shutdown, pc.GetAnnotations()[pgo.AnnotationAllowUpgrade])
		}
		for _, reason := range []string{platformv1alpha1.EventMajorUpgradeStarted, platformv1alpha1.EventMajorUpgradeSucceeded} {
			waitEvent(t, upgraded, reason)
		}
		// The order: shut down (every StatefulSet at 0), PGO's PGUpgrade
		// succeeds, and only then a StatefulSet runs 17's image.
		image17 := databaseImage(t, upgraded.Namespace)
		seen.check(t, image17)

		// No way down: a lower version is held, the cluster keeps running 17.
		update(t, upgraded, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 })
		waitCondition(t, upgraded, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld, "cannot move down to 16")
		waitCondition(t, upgraded, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	t.Run("operations in the spec each run once per token on PGO: a backup, a switchover, a restart", func(t *testing.T) {
		two := int32(2)
		ops := createStack(t, "feat-ops", "ops", func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Replicas = &two })
		waitCondition(t, ops, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		succeeded := func(pick func(*platformv1alpha1.OperationsStatus) *platformv1alpha1.OperationStatus, token platformv1alpha1.OperationToken) {
			t.Helper()
			waitFor(t, ops, fmt.Sprintf("operation %s Succeeded", token), func(s *platformv1alpha1.PostgresStack) bool {
				if s.Status.Operations == nil || pick(s.Status.Operations) == nil {
					return false
				}
				st := pick(s.Status.Operations)
				if st.Token == token && st.Phase == platformv1alpha1.OperationFailed {
					t.Fatalf("operation %s failed: %s", token, st.Message)
				}
				return st.Token == token && st.Phase == platformv1alpha1.OperationSucceeded
			})
		}
		backupOf := func(o *platformv1alpha1.OperationsStatus) *platformv1alpha1.OperationStatus { return o.Backup }
		manualJobs := func() []string {
			jobs := &batchv1.JobList{}
			must(t, k8s.List(ctx, jobs, client.InNamespace(ops.Namespace), client.MatchingLabels{"postgres-operator.crunchydata.com/pgbackrest-backup": "manual"}))
			var ids []string
			for _, j := range jobs.Items {
				ids = append(ids, j.Annotations[pgo.AnnotationBackup])
			}
			return ids
		}

		// A backup: PGO's manual backup Job runs and PGO reports it.
		update(t, ops, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operations = &platformv1alpha1.Operations{Backup: &platformv1alpha1.BackupOperation{Token: "b1", Options: []string{"--type=full"}}}
		})
		succeeded(backupOf, "b1")
		pc := postgresCluster(t, ops)
		if id, _, _ := unstructured.NestedString(pc.Object, "status", "pgbackrest", "manualBackup", "id"); id != "b1" {
			t.Errorf("PGO's status.pgbackrest.manualBackup.id = %q, want b1", id)
		}
		if ids := manualJobs(); fmt.Sprint(ids) != "[b1]" {
			t.Errorf("PGO's manual backup Jobs are for %v, want one, for b1", ids)
		}
		waitEvent(t, ops, platformv1alpha1.EventOperationSucceeded)

		// A second token runs once; the first put back (as Git or Argo CD's
		// self-heal would) runs nothing: once the stack has observed it, the
		// cluster still carries b2 and no Job is asked for b1.
		update(t, ops, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operations.Backup.Token = "b2" })
		succeeded(backupOf, "b2")
		update(t, ops, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operations.Backup.Token = "b1" })
		generation := getStack(t, ops).Generation
		waitFor(t, ops, "the stack observes the old token", func(s *platformv1alpha1.PostgresStack) bool { return s.Status.ObservedGeneration >= generation })
		got := getStack(t, ops).Status.Operations.Backup
		if got.Token != "b2" || fmt.Sprint(got.UsedTokens) != "[b1]" || postgresCluster(t, ops).GetAnnotations()[pgo.AnnotationBackup] != "b2" {
			t.Errorf("after b1 was put back: status %+v, annotation %q; want b2 run last, b1 used, the annotation still b2",
				got, postgresCluster(t, ops).GetAnnotations()[pgo.AnnotationBackup])
		}
		if ids := manualJobs(); len(ids) != 1 || ids[0] != "b2" {
			t.Errorf("PGO's manual backup Jobs are for %v, want the one for b2 (PGO deletes a finished one when the token changes)", ids)
		}

		// status.cluster.primary names the pod Patroni labels leader.
		primaryIsTheLeader := func(when string) {
			t.Helper()
			waitFor(t, ops, "status.cluster.primary names the leader pod "+when, func(s *platformv1alpha1.PostgresStack) bool {
				leaders := &corev1.PodList{}
				must(t, k8s.List(ctx, leaders, client.InNamespace(ops.Namespace), client.MatchingLabels{"postgres-operator.crunchydata.com/role": "master"}))
				return len(leaders.Items) == 1 && s.Status.Cluster.Primary == leaders.Items[0].Name
			})
		}
		primaryIsTheLeader("before the switchover")

		// A switchover to the replica: PGO runs patronictl and reports the token.
		pods := &corev1.PodList{}
		must(t, k8s.List(ctx, pods, client.InNamespace(ops.Namespace), client.MatchingLabels{"postgres-operator.crunchydata.com/role": "replica"}))
		if len(pods.Items) != 1 {
			t.Fatalf("%d replica pods, want 1", len(pods.Items))
		}
		target := pods.Items[0].Labels["postgres-operator.crunchydata.com/instance"]
		update(t, ops, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operations.Switchover = &platformv1alpha1.SwitchoverOperation{Token: "s1", TargetInstance: target}
		})
		succeeded(func(o *platformv1alpha1.OperationsStatus) *platformv1alpha1.OperationStatus { return o.Switchover }, "s1")
		eventually(t, "the primary runs in "+target, func() (bool, error) {
			leaders := &corev1.PodList{}
			err := k8s.List(ctx, leaders, client.InNamespace(ops.Namespace), client.MatchingLabels{"postgres-operator.crunchydata.com/role": "master"})
			return err == nil && len(leaders.Items) == 1 && leaders.Items[0].Labels["postgres-operator.crunchydata.com/instance"] == target, err
		})
		primaryIsTheLeader("after the switchover")
		if s, _, _ := unstructured.NestedString(postgresCluster(t, ops).Object, "status", "patroni", "switchover"); s != "s1" {
			t.Errorf("PGO's status.patroni.switchover = %q, want s1", s)
		}

		// A restart: PGO rolls every instance onto a template carrying the
		// token; every pod is a new one.
		before := map[string]string{}
		must(t, k8s.List(ctx, pods, client.InNamespace(ops.Namespace), client.HasLabels{"postgres-operator.crunchydata.com/instance"}))
		for _, p := range pods.Items {
			before[p.Name] = string(p.UID)
		}
		update(t, ops, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operations.Restart = &platformv1alpha1.RestartOperation{Token: "r1"}
		})
		succeeded(func(o *platformv1alpha1.OperationsStatus) *platformv1alpha1.OperationStatus { return o.Restart }, "r1")
		waitCondition(t, ops, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		must(t, k8s.List(ctx, pods, client.InNamespace(ops.Namespace), client.HasLabels{"postgres-operator.crunchydata.com/instance"}))
		for _, p := range pods.Items {
			if before[p.Name] == string(p.UID) {
				t.Errorf("pod %s was not restarted", p.Name)
			}
			if p.Annotations[pgo.AnnotationRestart] != "r1" {
				t.Errorf("pod %s carries restart token %q, want r1", p.Name, p.Annotations[pgo.AnnotationRestart])
			}
		}
	})

	t.Run("removing a backup repository on a volume waits for a token naming it; then PGO deletes its volume", func(t *testing.T) {
		repos := createStack(t, "feat-repos", "repos", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Repos = []platformv1alpha1.BackupRepo{
				{Name: "repo1", Volume: &platformv1alpha1.VolumeRepo{}}, {Name: "repo2", Volume: &platformv1alpha1.VolumeRepo{}}}
		})
		waitCondition(t, repos, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		repo2Volume := func() (*corev1.PersistentVolumeClaim, error) {
			pvcs := &corev1.PersistentVolumeClaimList{}
			if err := k8s.List(ctx, pvcs, client.InNamespace(repos.Namespace), client.MatchingLabels{
				"postgres-operator.crunchydata.com/pgbackrest-repo": "repo2"}, client.HasLabels{"postgres-operator.crunchydata.com/pgbackrest-volume"}); err != nil {
				return nil, err
			}
			if len(pvcs.Items) != 1 {
				return nil, nil
			}
			return &pvcs.Items[0], nil
		}
		eventually(t, "PGO made repo2's volume", func() (bool, error) { pvc, err := repo2Volume(); return pvc != nil, err })

		update(t, repos, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Repos = s.Spec.Postgres.Backups.Repos[:1]
		})
		waitCondition(t, repos, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonBackupRemovalHeld, "repo2")
		waitCondition(t, repos, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		if pvc, err := repo2Volume(); err != nil || pvc == nil || !pvc.DeletionTimestamp.IsZero() {
			t.Fatalf("repo2's volume while the removal is held: %v (%v), want it there", pvc, err)
		}
		names := func() []string { return pgoRepos(postgresCluster(t, repos)) }
		if got := names(); fmt.Sprint(got) != "[repo1 repo2]" {
			t.Errorf("the PostgresCluster's repos while held: %v, want repo1 and repo2", got)
		}

		update(t, repos, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operations = &platformv1alpha1.Operations{BackupRemoval: &platformv1alpha1.BackupRemovalOperation{Token: "drop-repo2", Repos: []platformv1alpha1.RepoName{"repo2"}}}
		})
		waitFor(t, repos, "backupRemoval drop-repo2 Succeeded", func(s *platformv1alpha1.PostgresStack) bool {
			return s.Status.Operations != nil && s.Status.Operations.BackupRemoval != nil &&
				s.Status.Operations.BackupRemoval.Token == "drop-repo2" && s.Status.Operations.BackupRemoval.Phase == platformv1alpha1.OperationSucceeded
		})
		waitCondition(t, repos, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
		waitCondition(t, repos, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		eventually(t, "PGO deletes repo2's volume", func() (bool, error) {
			pvc, err := repo2Volume()
			return pvc == nil || !pvc.DeletionTimestamp.IsZero(), err
		})
		if got := names(); fmt.Sprint(got) != "[repo1]" {
			t.Errorf("the PostgresCluster's repos after the removal: %v, want repo1", got)
		}
	})

	t.Run("status.backups reports the scheduled backups PGO ran, at PGO's times", func(t *testing.T) {
		day := metav1.Duration{Duration: 24 * time.Hour}
		scheduled := createStack(t, "feat-scheduled", "nightly", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Repos = []platformv1alpha1.BackupRepo{{Name: "repo1", Volume: &platformv1alpha1.VolumeRepo{},
				Schedules: &platformv1alpha1.BackupSchedules{Full: "* * * * *"}}}
			s.Spec.Postgres.Backups.MaxBackupAge = &day
		})
		// kube-controller-manager's CronJob controller starts PGO's backup
		// CronJob's Job on the next minute; kwok completes its pod.
		var completed string
		eventually(t, "PGO reports a scheduled full backup of repo1 succeeded", func() (bool, error) {
			pc := pgo.NewPostgresCluster()
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(scheduled), pc); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			jobs, _, _ := unstructured.NestedSlice(pc.Object, "status", "pgbackrest", "scheduledBackups")
			for _, j := range jobs {
				m := j.(map[string]any)
				if m["repo"] == "repo1" && m["type"] == "full" && m["succeeded"] == int64(1) {
					completed, _ = m["completionTime"].(string)
				}
			}
			return completed != "", nil
		})
		waitFor(t, scheduled, "status.backups shows PGO's full backup", func(s *platformv1alpha1.PostgresStack) bool {
			b := s.Status.Backups
			return b != nil && len(b.Repos) == 1 && b.Repos[0].LastFull != nil && b.Repos[0].LastFull.UTC().Format(time.RFC3339) == completed &&
				b.LastSuccessful != nil && b.LastSuccessful.UTC().Format(time.RFC3339) >= completed
		})
		got := getStack(t, scheduled)
		if r := got.Status.Backups.Repos[0]; r.Name != "repo1" || !r.Ready || r.LastFailure != nil {
			t.Errorf("status.backups.repos[0] = %+v, want repo1 ready without a failure", r)
		}
		c := waitCondition(t, scheduled, platformv1alpha1.ConditionBackupsHealthy, metav1.ConditionTrue, platformv1alpha1.ReasonBackupsSucceeding, "within maxBackupAge 24h0m0s")
		if conn := got.Status.Connection; conn == nil || conn.Service != "nightly-primary" || len(conn.Users) != 1 || conn.Users[0].Secret != "nightly-pguser-nightly" {
			t.Errorf("status.connection = %+v, want PGO's nightly-primary Service and nightly-pguser-nightly Secret", conn)
		}
		t.Logf("BackupsHealthy: %s", c.Message)
	})

	t.Run("a scheduled backup that fails turns BackupsHealthy False, and Ready stays", func(t *testing.T) {
		failing := createStack(t, "feat-backup-fail", "flaky", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Repos = []platformv1alpha1.BackupRepo{{Name: "repo1", Volume: &platformv1alpha1.VolumeRepo{},
				Schedules: &platformv1alpha1.BackupSchedules{Full: "* * * * *"}}}
		})
		waitCondition(t, failing, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		// The CronJob's Job starts on the next minute and its pod fails.
		// PGO copies its Jobs' counts into status.pgbackrest.scheduledBackups
		// only when it reconciles the cluster (it watches its CronJobs, not
		// their Jobs; a Job that exhausts its six retries ends the CronJob's
		// run after about ten minutes): an annotation of the test's own wakes
		// PGO, as any change to the cluster would.
		var poked time.Time
		eventually(t, "PGO reports a failed scheduled full backup of repo1", func() (bool, error) {
			pc := pgo.NewPostgresCluster()
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(failing), pc); err != nil {
				return false, err
			}
			jobs, _, _ := unstructured.NestedSlice(pc.Object, "status", "pgbackrest", "scheduledBackups")
			for _, j := range jobs {
				if m := j.(map[string]any); m["repo"] == "repo1" && m["type"] == "full" && m["failed"] != nil && m["failed"].(int64) > 0 {
					return true, nil
				}
			}
			if time.Since(poked) > 3*time.Second {
				poked = time.Now()
				patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"annotations":{"e2e.pgstack.dev/look":%q}}}`, poked.Format(time.RFC3339Nano))))
				return false, k8s.Patch(ctx, pc, patch)
			}
			return false, nil
		})
		c := waitCondition(t, failing, platformv1alpha1.ConditionBackupsHealthy, metav1.ConditionFalse, platformv1alpha1.ReasonScheduledBackupFailed, "full backup of repo1")
		got := getStack(t, failing)
		if r := got.Status.Backups.Repos[0]; r.LastFailure == nil || r.LastFailure.Type != "full" {
			t.Errorf("status.backups.repos[0] = %+v, want its last failure, a full backup", r)
		}
		if !meta.IsStatusConditionTrue(got.Status.Conditions, platformv1alpha1.ConditionReady) {
			t.Errorf("a failed backup made the stack un-Ready: %v", meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionReady))
		}
		t.Logf("BackupsHealthy: %s", c.Message)
	})

	t.Run("a PGUpgrade whose Job fails leaves the cluster shut down and the stack Stalled with PGO's reason", func(t *testing.T) {
		failing := createStack(t, "feat-upgrade-fail", "failing", func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 })
		waitCondition(t, failing, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		update(t, failing, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })
		waitCondition(t, failing, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorUpgradeFailed, "PGUpgradeFailed", "stays shut down")
		u := pgo.NewPGUpgrade()
		must(t, k8s.Get(ctx, client.ObjectKey{Namespace: failing.Namespace, Name: "failing-pg17"}, u))
		if r := pgo.ReadPGUpgrade(u); !r.Failed {
			t.Errorf("PGO's report on PGUpgrade failing-pg17: %+v, want Failed", r)
		}
		pc := postgresCluster(t, failing)
		version, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
		shutdown, _, _ := unstructured.NestedBool(pc.Object, "spec", "shutdown")
		if version != 16 || !shutdown {
			t.Errorf("PostgresCluster after a failed upgrade: postgresVersion %d, shutdown %v; want 16, shut down", version, shutdown)
		}
		if st := getStack(t, failing).Status.Cluster.MajorUpgrade; st == nil || st.Step != platformv1alpha1.UpgradeFailed {
			t.Errorf("status.cluster.majorUpgrade = %+v, want Failed", st)
		}
	})

	t.Run("a pooled stack is Ready once PGO reports PgBouncer available", func(t *testing.T) {
		pooled := createStack(t, "feat-pooler", "pooled", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Pooler = &platformv1alpha1.Pooler{}
		})
		waitCondition(t, pooled, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		if c := pgoCondition(postgresCluster(t, pooled), "ProxyAvailable"); c == nil || c["status"] != "True" {
			t.Errorf("PGO's ProxyAvailable = %v, want True on a Ready pooled stack", c)
		}
		// status.connection names what PGO really made, by PGO's naming.
		conn := getStack(t, pooled).Status.Connection
		if conn == nil || conn.PoolerService == "" || len(conn.Users) != 1 {
			t.Fatalf("status.connection = %+v, want the primary, PgBouncer and one user's Secret", conn)
		}
		for _, obj := range []client.Object{
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: pooled.Namespace, Name: conn.Service}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: pooled.Namespace, Name: conn.PoolerService}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: pooled.Namespace, Name: conn.Users[0].Secret}},
		} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Errorf("status.connection names %T %s, which PGO did not make: %v", obj, obj.GetName(), err)
			}
		}
	})

	source := createStack(t, "feat-dr", "source", nil)
	t.Run("a stack with backups is Ready only once PGO created the stanza and the replica backup", func(t *testing.T) {
		waitCondition(t, source, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		pc := postgresCluster(t, source)
		for _, c := range []string{"PGBackRestReplicaRepoReady", "PGBackRestReplicaCreate"} {
			if got := pgoCondition(pc, c); got == nil || got["status"] != "True" {
				t.Errorf("PGO's %s = %v on a Ready stack with backups", c, got)
			}
		}
	})

	t.Run("a clone of a stack's cluster is seeded by PGO's restore Job and becomes Ready", func(t *testing.T) {
		clone := createStack(t, "feat-dr", "source-clone", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.CloneFrom = &platformv1alpha1.CloneFrom{ClusterName: "source", RepoName: "repo1"}
		})
		waitCondition(t, clone, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		c := pgoCondition(postgresCluster(t, clone), "PostgresDataInitialized")
		if c == nil || c["status"] != "True" {
			t.Fatalf("PGO's PostgresDataInitialized = %v on the clone, want True (its restore Job completed)", c)
		}
		// The stack says what seeded it, when PGO says the restore completed.
		waitFor(t, clone, "status.cluster.restore reported", func(s *platformv1alpha1.PostgresStack) bool {
			return s.Status.Cluster.Restore != nil
		})
		// PGO records the seeding as a restore of its own id.
		pgoRestore, _, _ := unstructured.NestedMap(postgresCluster(t, clone).Object, "status", "pgbackrest", "restore")
		if r := getStack(t, clone).Status.Cluster.Restore; r.Source != "repo1 of PostgresCluster feat-dr/source" || r.ID != "" || !r.Finished || !r.Succeeded ||
			r.CompletionTime == nil || r.CompletionTime.UTC().Format(time.RFC3339) != pgoRestore["completionTime"] {
			t.Errorf("status.cluster.restore = %+v (completion %v), want repo1 of PostgresCluster feat-dr/source, succeeded when PGO's restore %v did", r, r.CompletionTime, pgoRestore)
		}
	})

	t.Run("a point-in-time restore in place runs PGO's restore and ends Ready", func(t *testing.T) {
		target := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
		update(t, source, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Restore = &platformv1alpha1.Restore{ID: "drill-1", RepoName: "repo1", TargetTime: &target}
		})
		// PGO stops the instances, runs its restore Job, then starts them
		// again and records the restore it finished.
		eventually(t, "PGO finishes restore drill-1", func() (bool, error) {
			pc := postgresCluster(t, source)
			id, _, _ := unstructured.NestedString(pc.Object, "status", "pgbackrest", "restore", "id")
			finished, _, _ := unstructured.NestedBool(pc.Object, "status", "pgbackrest", "restore", "finished")
			return id == "drill-1" && finished, nil
		})
		waitCondition(t, source, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		// The stack reports the restore as PGO recorded it, with the point
		// in time it asked for.
		pgoCompletion, _, _ := unstructured.NestedString(postgresCluster(t, source).Object, "status", "pgbackrest", "restore", "completionTime")
		waitFor(t, source, "status.cluster.restore reports drill-1", func(s *platformv1alpha1.PostgresStack) bool {
			r := s.Status.Cluster.Restore
			return r != nil && r.ID == "drill-1" && r.Source == "repo1 of this cluster" && r.Finished && r.Succeeded &&
				r.TargetTime != nil && r.TargetTime.Equal(&target) &&
				r.CompletionTime != nil && r.CompletionTime.UTC().Format(time.RFC3339) == pgoCompletion
		})
	})

	t.Run("a standby streaming from a primary is Ready without a stanza", func(t *testing.T) {
		standby := createStack(t, "feat-standby", "standby", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Backups.Enabled = &no
			s.Spec.Postgres.Standby = &platformv1alpha1.Standby{Host: "source-primary.feat-dr.svc"}
		})
		waitCondition(t, standby, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	t.Run("a major version PGO ships no image for stalls before anything is applied", func(t *testing.T) {
		old := createStack(t, "feat-images", "old", func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 14 })
		waitCondition(t, old, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonNoImageForVersion, "14")
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(old), pgo.NewPostgresCluster()); err == nil {
			t.Errorf("a PostgresCluster was applied for PostgreSQL 14, which PGO cannot run without an image")
		}
	})

	t.Run("an image PGO itself finds missing stalls the stack with PGO's reason", func(t *testing.T) {
		// PGO's legacy pgAdmin needs RELATED_IMAGE_PGADMIN, which no 5.8
		// release sets: PGO refuses the cluster with a Warning Event.
		admin := createStack(t, "feat-images", "admin", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Overrides = &apiextensionsv1.JSON{Raw: []byte(`{"userInterface":{"pgAdmin":{"dataVolumeClaimSpec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}}}`)}
		})
		waitCondition(t, admin, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMissingRequiredImage)
	})
}

// upgradeRecord holds, in the order the API server wrote them, the
// instance StatefulSets' replicas and database images and the PGUpgrade's
// Succeeded condition, from watches started before an upgrade.
type upgradeRecord struct {
	mu        sync.Mutex
	sets      []setWrite
	succeeded int64 // the resourceVersion at which PGO first reported Succeeded
}

type setWrite struct {
	rv       int64
	name     string
	replicas int32
	image    string
}

func recordUpgrade(t *testing.T, namespace string) *upgradeRecord {
	t.Helper()
	cs, err := kubernetes.NewForConfig(lc.Config)
	must(t, err)
	dyn, err := dynamic.NewForConfig(lc.Config)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rec := &upgradeRecord{}
	sets, err := cs.AppsV1().StatefulSets(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: "postgres-operator.crunchydata.com/instance"})
	must(t, err)
	upgrades, err := dyn.Resource(pgo.PGUpgradeGVK.GroupVersion().WithResource("pgupgrades")).Namespace(namespace).Watch(ctx, metav1.ListOptions{})
	must(t, err)
	go func() {
		for ev := range sets.ResultChan() {
			s, ok := ev.Object.(*appsv1.StatefulSet)
			if !ok {
				continue
			}
			rv, _ := strconv.ParseInt(s.ResourceVersion, 10, 64)
			w := setWrite{rv: rv, name: s.Name, replicas: 1}
			if s.Spec.Replicas != nil {
				w.replicas = *s.Spec.Replicas
			}
			for _, c := range s.Spec.Template.Spec.Containers {
				if c.Name == "database" {
					w.image = c.Image
				}
			}
			rec.mu.Lock()
			rec.sets = append(rec.sets, w)
			rec.mu.Unlock()
		}
	}()
	go func() {
		for ev := range upgrades.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || !pgo.ReadPGUpgrade(u).Succeeded {
				continue
			}
			rv, _ := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
			rec.mu.Lock()
			if rec.succeeded == 0 {
				rec.succeeded = rv
			}
			rec.mu.Unlock()
		}
	}()
	return rec
}

// check: no StatefulSet ran replicas on image17 before PGO reported the
// PGUpgrade Succeeded, and every one was at 0 replicas at some point before.
func (r *upgradeRecord) check(t *testing.T, image17 string) {
	t.Helper()
	eventually(t, "the watches saw the PGUpgrade succeed and a StatefulSet on "+image17, func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.succeeded == 0 {
			return false, nil
		}
		for _, w := range r.sets {
			if w.image == image17 && w.replicas > 0 {
				return true, nil
			}
		}
		return false, nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	stopped := map[string]bool{}
	for _, w := range r.sets {
		if w.rv < r.succeeded && w.replicas == 0 {
			stopped[w.name] = true
		}
		if w.image == image17 && w.replicas > 0 && w.rv < r.succeeded {
			t.Errorf("StatefulSet %s ran %d replicas on %s at resourceVersion %d, before the PGUpgrade succeeded at %d", w.name, w.replicas, image17, w.rv, r.succeeded)
		}
	}
	for _, w := range r.sets {
		if !stopped[w.name] {
			t.Errorf("StatefulSet %s was never at 0 replicas before the PGUpgrade succeeded", w.name)
		}
	}
}

// databaseImage is the image the namespace's instance StatefulSets run now.
func databaseImage(t *testing.T, namespace string) string {
	t.Helper()
	sets := &appsv1.StatefulSetList{}
	must(t, k8s.List(context.Background(), sets, client.InNamespace(namespace), client.HasLabels{"postgres-operator.crunchydata.com/instance"}))
	for _, s := range sets.Items {
		for _, c := range s.Spec.Template.Spec.Containers {
			if c.Name == "database" {
				return c.Image
			}
		}
	}
	t.Fatalf("no instance StatefulSet in %s", namespace)
	return ""
}

// postgresCluster is the stack's PostgresCluster as stored.
func postgresCluster(t *testing.T, s *platformv1alpha1.PostgresStack) *unstructured.Unstructured {
	t.Helper()
	pc := pgo.NewPostgresCluster()
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(s), pc))
	return pc
}

// pgoRepos are the names of the PostgresCluster's backup repositories.
func pgoRepos(pc *unstructured.Unstructured) []string {
	repos, _, _ := unstructured.NestedSlice(pc.Object, "spec", "backups", "pgbackrest", "repos")
	var names []string
	for _, r := range repos {
		if m, ok := r.(map[string]any); ok {
			names = append(names, fmt.Sprint(m["name"]))
		}
	}
	return names
}

// pgoCondition is the condition of that type PGO wrote, or nil.
func pgoCondition(pc *unstructured.Unstructured, conditionType string) map[string]any {
	conditions, _, _ := unstructured.NestedSlice(pc.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == conditionType {
			return m
		}
	}
	return nil
}
