package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/test/ledger"
)

const (
	// killsPerStep SIGKILLs per flow step; 9 steps make 36 kill points.
	killsPerStep = 4
	// maxKillDelay bounds each random point: the time from a step's start
	// (or the manager's previous restart) to the next SIGKILL.
	maxKillDelay = 1500 * time.Millisecond
	// crashRange is the version range of every stack in the crash flow, so
	// the set of CSVs pgstack may approve is the same all along.
	crashRange = ">=5.8.0 <5.9.0"
)

// crashStep is one step of a flow: what a person or the catalog does, and
// what the cluster converges to. The manager is killed at random points
// while the step runs.
type crashStep struct {
	name     string
	act      func(t *testing.T)
	converge func(t *testing.T)
}

// TestManagerSurvivesSIGKILLAnywhere runs install (adopting a hand-made
// Subscription), sharing, an upgrade inside the stacks' range, an upgrade
// outside it, a backup, a restart and a switchover asked for by tokens
// (each run by PGO exactly once), and deletion under Retain, Delete and DeleteIfUnused, killing
// the manager with SIGKILL at random points of every step and starting it
// again each time. Every step must converge anyway, and pgstack must only
// ever approve the CSVs every stack's range allows: 5.8.8 and 5.8.9, never
// 5.9.0.
func TestManagerSurvivesSIGKILLAnywhere(t *testing.T) {
	t.Cleanup(func() { logCounts(t) })
	ctx := context.Background()
	ledgerFrom := len(approvals.Approvals())
	allowed := map[string]bool{csvName("5.8.8"): true, csvName("5.8.9"): true}
	withRange := func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Versions = crashRange }

	var alpha, bravo, charlie *platformv1alpha1.PostgresStack
	two := int32(2)
	var runs *pgoRuns // what PGO ran for charlie's operations
	// charlie's primary before step 6, the switchover's target: the
	// restart asked at once runs first and its rollout hands the primary to
	// the replica (PGO rolls replicas first, then switches the primary
	// over), so the switchover that follows moves it back, and PGO runs it.
	// (A target that already leads would succeed with no switchover.)
	var target string
	steps := []crashStep{
		{
			name: "adopt the hand-made my-postgresql and install for alpha (Retain)",
			act: func(t *testing.T) {
				// What `kubectl apply -f operatorhub.io/install/postgresql.yaml` leaves behind.
				must(t, k8s.Create(ctx, &operatorsv1alpha1.Subscription{
					ObjectMeta: metav1.ObjectMeta{Name: "my-postgresql", Namespace: installNS},
					Spec: &operatorsv1alpha1.SubscriptionSpec{Package: pgoPackage, Channel: "v5", CatalogSource: "operatorhubio-catalog",
						CatalogSourceNamespace: "olm", InstallPlanApproval: operatorsv1alpha1.ApprovalAutomatic},
				}))
				alpha = newStack(t, "crash-alpha", "alpha", withRange)
			},
			converge: func(t *testing.T) {
				waits.Condition(t, alpha, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.8")
				sub := oneSubscription(t)
				if sub.Name != "my-postgresql" || sub.Labels[controllers.ManagedLabel] != controllers.ManagedValue ||
					sub.Spec.InstallPlanApproval != operatorsv1alpha1.ApprovalManual {
					t.Fatalf("want my-postgresql adopted (labelled, Manual), got %s labels=%v approval=%s", sub.Name, sub.Labels, sub.Spec.InstallPlanApproval)
				}
			},
		},
		{
			name: "bravo (Delete) shares the operator",
			act:  func(t *testing.T) { bravo = newStack(t, "crash-bravo", "bravo", deletePolicy(withRange)) },
			converge: func(t *testing.T) {
				waits.Condition(t, bravo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.8")
			},
		},
		{
			name: "5.8.9 is published, inside the range",
			act:  func(t *testing.T) { must(t, lc.PublishVersion(ctx, pgoPackage, "5.8.9")) },
			converge: func(t *testing.T) {
				waits.Condition(t, alpha, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
				waits.Condition(t, bravo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
			},
		},
		{
			name: "5.9.0 is published, outside the range",
			act:  func(t *testing.T) { must(t, lc.PublishVersion(ctx, pgoPackage, "5.9.0")) },
			converge: func(t *testing.T) {
				waits.Condition(t, alpha, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, "OutsideVersionRange", "5.9.0")
				waits.Condition(t, bravo, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, "OutsideVersionRange", "5.9.0")
				waits.Condition(t, alpha, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
				planNotApproved(t, csvName("5.9.0"))
			},
		},
		{
			name: "charlie (Retain, removal DeleteIfUnused) joins",
			act: func(t *testing.T) {
				charlie = newStack(t, "crash-charlie", "charlie", func(s *platformv1alpha1.PostgresStack) {
					withRange(s)
					s.Spec.Operator.Removal = platformv1alpha1.RemovalDeleteIfUnused
					s.Spec.Postgres.Replicas = &two
				})
			},
			converge: func(t *testing.T) {
				waits.Condition(t, charlie, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
			},
		},
		{
			name: "charlie asks for a backup, a restart and a switchover at once",
			act: func(t *testing.T) {
				runs = recordPGORuns(t, charlie.Namespace)
				target = primaryInstance(t, charlie)
				waits.UpdateStack(t, charlie, func(s *platformv1alpha1.PostgresStack) {
					s.Spec.Operations = &platformv1alpha1.Operations{
						Backup:     &platformv1alpha1.BackupOperation{Token: "b1"},
						Restart:    &platformv1alpha1.RestartOperation{Token: "r1"},
						Switchover: &platformv1alpha1.SwitchoverOperation{Token: "s1", TargetInstance: target},
					}
				})
			},
			converge: func(t *testing.T) {
				operationsRanOnce(t, charlie, runs, target)
				waits.Condition(t, charlie, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
			},
		},
		{
			name: "bravo is deleted: Delete takes its PostgresCluster",
			act:  func(t *testing.T) { deleteStack(t, bravo) },
			converge: func(t *testing.T) {
				waits.StackGone(t, bravo)
				waits.Eventually(t, "bravo's PostgresCluster deleted", func() (bool, error) {
					return postgresCluster(t, bravo) == nil, nil
				})
			},
		},
		{
			name: "alpha is deleted: Retain keeps its PostgresCluster, charlie keeps the operator",
			act:  func(t *testing.T) { deleteStack(t, alpha) },
			converge: func(t *testing.T) {
				waits.StackGone(t, alpha)
				retainedIntact(t, alpha)
				oneSubscription(t)
				waits.Condition(t, charlie, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
			},
		},
		{
			name: "charlie, the last user, is deleted: DeleteIfUnused removes the operator",
			act:  func(t *testing.T) { deleteStack(t, charlie) },
			converge: func(t *testing.T) {
				waits.StackGone(t, charlie)
				retainedIntact(t, charlie)
				waits.Eventually(t, "no Subscription and no CSV for "+pgoPackage+" left", func() (bool, error) {
					subs, err := subscriptionsFor(ctx, installNS, pgoPackage)
					if err != nil || len(subs) != 0 {
						return false, err
					}
					err = k8s.Get(ctx, client.ObjectKey{Namespace: installNS, Name: csvName("5.8.9")}, &operatorsv1alpha1.ClusterServiceVersion{})
					return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
				})
			},
		},
	}

	for i, step := range steps {
		ok := t.Run(fmt.Sprintf("%d %s", i+1, step.name), func(t *testing.T) {
			begin := time.Now()
			killed := killAtRandomPoints(ctx, t, killsPerStep)
			step.act(t)
			if err := <-killed; err != nil {
				t.Fatalf("restart the manager: %v", err)
			}
			step.converge(t)
			guard.check(t)
			if bad := approvalsOutside(ledgerFrom, crashAllowed(allowed)); len(bad) > 0 {
				t.Fatalf("InstallPlans approved outside policy: %+v", bad)
			}
			t.Logf("converged %s after the step began, through %d SIGKILLs", time.Since(begin).Round(100*time.Millisecond), killsPerStep)
		})
		if !ok {
			t.FailNow() // later steps build on this one
		}
	}
	t.Logf("ledger: %+v", approvals.Approvals()[ledgerFrom:])
}

// crashAllowed judges an approval in the crash flow: pgstack may approve
// only plans whose every CSV is in allowed; OLM itself approves only the
// first plan of the hand-made Automatic Subscription, if it gets there
// before pgstack adopts it (5.8.8, the channel head then); nobody else
// approves anything.
func crashAllowed(allowed map[string]bool) func(ledger.Approval) bool {
	return func(a ledger.Approval) bool {
		switch {
		case a.Manager == pgstackApprover && a.Approval == operatorsv1alpha1.ApprovalManual:
			for _, csv := range a.CSVNames {
				if !allowed[csv] {
					return false
				}
			}
			return len(a.CSVNames) > 0
		case a.Approval == operatorsv1alpha1.ApprovalAutomatic:
			return len(a.CSVNames) == 1 && a.CSVNames[0] == csvName("5.8.8")
		default:
			return false
		}
	}
}

// killAtRandomPoints SIGKILLs the manager n times, each after a random delay
// from the step's start or the previous restart (once the restarted manager
// serves again), and starts it again each time. The channel reports when the
// last restart serves.
func killAtRandomPoints(ctx context.Context, t *testing.T, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			delay := random.delay(maxKillDelay)
			time.Sleep(delay) // the kill schedule, not an assertion
			if err := manager.Restart(); err != nil {
				done <- err
				return
			}
			counts.add(&counts.killPoints, 1)
			t.Logf("SIGKILL %d/%d at +%s, restarted as pid %d", i+1, n, delay.Round(time.Millisecond), manager.PID())
			if err := manager.WaitServing(ctx, time.Minute); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

func deletePolicy(also func(*platformv1alpha1.PostgresStack)) func(*platformv1alpha1.PostgresStack) {
	return func(s *platformv1alpha1.PostgresStack) {
		also(s)
		s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete
	}
}

// retainedIntact checks a Retain stack's PostgresCluster after the stack is
// gone: there, not being deleted, owned by nobody.
func retainedIntact(t *testing.T, s *platformv1alpha1.PostgresStack) {
	t.Helper()
	pc := postgresCluster(t, s)
	if pc == nil {
		t.Fatalf("%s/%s's PostgresCluster is gone under deletionPolicy Retain", s.Namespace, s.Name)
	}
	if !pc.GetDeletionTimestamp().IsZero() || len(pc.GetOwnerReferences()) != 0 {
		t.Fatalf("%s/%s's PostgresCluster under Retain: deletionTimestamp=%v ownerReferences=%v", s.Namespace, s.Name, pc.GetDeletionTimestamp(), pc.GetOwnerReferences())
	}
	if !guard.seen(client.ObjectKeyFromObject(s)) {
		t.Fatalf("the invariants never saw %s/%s's PostgresCluster, so they could not guard it", s.Namespace, s.Name)
	}
}

// planNotApproved checks, on the API server itself, that every InstallPlan
// carrying csv is unapproved.
func planNotApproved(t *testing.T, csv string) {
	t.Helper()
	plans := &operatorsv1alpha1.InstallPlanList{}
	must(t, k8s.List(context.Background(), plans, client.InNamespace(installNS)))
	found := false
	for _, p := range plans.Items {
		for _, name := range p.Spec.ClusterServiceVersionNames {
			if name == csv {
				found = true
				if p.Spec.Approved {
					t.Fatalf("InstallPlan %s carrying %s is approved, outside every stack's range", p.Name, csv)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no InstallPlan carries %s: the refusal was not exercised", csv)
	}
}
