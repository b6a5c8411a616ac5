package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/ledger"
	"github.com/pgstack/pgstack/test/managerproc"
)

const (
	// leaseName is the Lease pgstack's managers elect their leader with
	// (manager.go's LeaderElectionID).
	leaseName = "pgstack.platform.pgstack.dev"
	// leaseNamespace holds it, as in a deployment (config/manager).
	leaseNamespace = "pgstack-system"

	// The failover test's election timings, shorter than controller-runtime's
	// defaults (15 s, 10 s, 2 s) so that a takeover takes seconds. The renew
	// deadline still rides out a slow API server on 2 shared cores: a leader
	// that cannot renew within it exits, which the test counts as a crash.
	failoverLeaseDuration = 8 * time.Second
	failoverRenewDeadline = 6 * time.Second
	failoverRetryPeriod   = time.Second

	// requestSlack covers the Lease writes and reads between the SIGKILL
	// and the test seeing the new holder (its own polls are 50 ms apart).
	requestSlack = time.Second
)

// takeoverBound is the longest client-go's election lets a takeover take
// after the leader dies. The follower notes the leader's last renewal at
// its next retry, counts LeaseDuration from then, and takes the Lease at
// its first retry after that. Its retries are RetryPeriod apart stretched
// by up to JitterFactor (1.2) more (wait.JitterUntil), so each of those two
// waits is up to 2.2 RetryPeriods: LeaseDuration + 2 × 2.2 × RetryPeriod,
// 12.4 s here, plus requestSlack. LeaseDuration + RetryPeriod (9 s) is
// about the mean takeover, not a bound: half the takeovers exceed it.
var takeoverBound = failoverLeaseDuration +
	time.Duration(2*(1+leaderelection.JitterFactor)*float64(failoverRetryPeriod)) + requestSlack

// TestLeaderFailover runs two managers with leader election in place of
// the suite's one and SIGKILLs the leader twice: while a fresh install
// flows (two stacks created, their Subscription's InstallPlan out) and while
// an operator upgrade between catalog versions is in flight. Each time the
// other manager must take the Lease within takeoverBound of the SIGKILL,
// the manager that does not lead must not have reconciled anything, no
// InstallPlan may be approved twice or outside policy, the invariants (one
// Subscription per package, one PostgresCluster per stack) must hold, and
// the stacks must end Ready. The stacks are then deleted and the operator
// removed, leaving the cluster as the test found it.
func TestLeaderFailover(t *testing.T) {
	t.Cleanup(func() { logCounts(t) })
	ctx := context.Background()

	// The premise: PGO is not installed, so the kill lands in a real install
	// (TestManagerSurvivesSIGKILLAnywhere removes the operator at its end; a
	// fresh cluster has none).
	subs, err := subscriptionsFor(ctx, installNS, pgoPackage)
	must(t, err)
	if len(subs) != 0 {
		t.Fatalf("want no Subscription for %s in %s before the failover test, so that it installs afresh; found %d", pgoPackage, installNS, len(subs))
	}
	installed := catalogHead(t)
	upgraded := nextPatch(t, installed)
	ledgerFrom := len(approvals.Approvals())

	// The suite's manager runs without leader election and would reconcile
	// alongside the two: it stops for this test and starts again after
	// (cleanups run last-registered first, so after the two have stopped).
	manager.Stop()
	t.Cleanup(func() {
		if err := manager.Resume(); err != nil {
			t.Errorf("start the suite's manager again: %v", err)
			return
		}
		if err := manager.WaitServing(ctx, time.Minute); err != nil {
			t.Errorf("the suite's manager after the failover test: %v", err)
		}
	})
	e := startElectorate(t)

	var golf, hotel *platformv1alpha1.PostgresStack
	var takeovers []time.Duration
	ok := t.Run("the leader is SIGKILLed mid-install", func(t *testing.T) {
		golf = newStack(t, "failover-golf", "golf", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operator.Removal = platformv1alpha1.RemovalDeleteIfUnused
		})
		hotel = newStack(t, "failover-hotel", "hotel", func(s *platformv1alpha1.PostgresStack) {
			s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete
			s.Spec.Operator.Removal = platformv1alpha1.RemovalDeleteIfUnused
		})
		plan := e.waitInstallPlan(t, csvName(installed))
		takeovers = append(takeovers, e.failOver(t, "mid-install", plan, csvName(installed)))
		e.waits.Condition(t, golf, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+installed)
		e.waits.Condition(t, hotel, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+installed)
		approvedOnceInPolicy(t, ledgerFrom, []string{csvName(installed)}, []string{csvName(installed)})
		guard.check(t)
	})
	if !ok {
		t.FailNow() // the upgrade needs the install
	}

	ok = t.Run("the leader is SIGKILLed mid-upgrade", func(t *testing.T) {
		must(t, lc.PublishVersion(ctx, pgoPackage, upgraded))
		plan := e.waitInstallPlan(t, csvName(upgraded))
		takeovers = append(takeovers, e.failOver(t, "mid-upgrade", plan, csvName(upgraded)))
		e.waits.Condition(t, golf, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+upgraded)
		e.waits.Condition(t, hotel, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+upgraded)
		both := []string{csvName(installed), csvName(upgraded)}
		approvedOnceInPolicy(t, ledgerFrom, both, both)
		guard.check(t)
	})
	if !ok {
		t.FailNow()
	}

	t.Run("the stacks are deleted and the operator with the last", func(t *testing.T) {
		deleteStack(t, hotel)
		waits.StackGone(t, hotel)
		e.waits.Eventually(t, "hotel's PostgresCluster deleted (deletionPolicy Delete)", func() (bool, error) {
			return postgresCluster(t, hotel) == nil, nil
		})
		deleteStack(t, golf)
		waits.StackGone(t, golf)
		retainedIntact(t, golf)
		e.waits.Eventually(t, "no Subscription and no CSV for "+pgoPackage+" left", func() (bool, error) {
			subs, err := subscriptionsFor(ctx, installNS, pgoPackage)
			if err != nil || len(subs) != 0 {
				return false, err
			}
			err = k8s.Get(ctx, client.ObjectKey{Namespace: installNS, Name: csvName(upgraded)}, &operatorsv1alpha1.ClusterServiceVersion{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		guard.check(t)
	})
	for _, c := range e.candidates {
		if err := c.proc.Exited(); err != nil {
			t.Fatalf("manager %s: %v", c.name, err)
		}
	}
	t.Logf("takeovers after the leader's SIGKILL: mid-install %s, mid-upgrade %s (bound %s; lease duration %s, retry period %s)",
		takeovers[0].Round(time.Millisecond), takeovers[1].Round(time.Millisecond), takeoverBound, failoverLeaseDuration, failoverRetryPeriod)
}

// candidate is one of the two leader-elected managers.
type candidate struct {
	name string
	proc *managerproc.Process
}

// electorate is the two managers, with waits that explain a failure with
// both managers' logs.
type electorate struct {
	candidates [2]*candidate
	waits      expect.Waiter
	hostname   string
	// holder is the identity that must hold the Lease now ("" until the
	// first leader is known): leadership moves only on a failover.
	holder string
}

// startElectorate starts managers a and b with leader election and waits
// until both serve metrics; they stop when the test ends.
func startElectorate(t *testing.T) *electorate {
	t.Helper()
	ctx := context.Background()
	must(t, lc.CreateNamespace(ctx, leaseNamespace))
	hostname, err := os.Hostname()
	must(t, err)
	e := &electorate{waits: waits, hostname: hostname}
	e.waits.Explain = func() string {
		return "manager a: " + lc.LogTail("pgstack-manager-a", 8) + "\nmanager b: " + lc.LogTail("pgstack-manager-b", 8) +
			"\nolm: " + lc.LogTail("olm", 4) + "\ncatalog: " + lc.LogTail("catalog", 4)
	}
	for i, name := range []string{"a", "b"} {
		proc, err := managerproc.Start(managerproc.Options{
			Binary: managerBinary, Kubeconfig: lc.Kubeconfig,
			LogPath: filepath.Join(lc.Dir, "logs", "pgstack-manager-"+name+".log"),
			Args: []string{"--leader-elect", "--leader-election-namespace=" + leaseNamespace,
				"--leader-election-lease-duration=" + failoverLeaseDuration.String(),
				"--leader-election-renew-deadline=" + failoverRenewDeadline.String(),
				"--leader-election-retry-period=" + failoverRetryPeriod.String()},
		})
		must(t, err)
		t.Cleanup(proc.Stop)
		e.candidates[i] = &candidate{name: name, proc: proc}
	}
	for _, c := range e.candidates {
		if err := c.proc.WaitServing(ctx, time.Minute); err != nil {
			t.Fatalf("manager %s: %v", c.name, err)
		}
	}
	return e
}

// lease reads the election's Lease.
func (e *electorate) lease(ctx context.Context) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: leaseName}, lease)
	return lease, err
}

func holderOf(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// leader waits until the Lease names a holder and exactly one running
// manager says it leads (controller-runtime's leader_election_master_status), and
// returns that manager, the other, and the holder's identity. Two managers
// leading at once fails the test at once.
func (e *electorate) leader(t *testing.T) (leader, follower *candidate, identity string) {
	t.Helper()
	ctx := context.Background()
	e.waits.Eventually(t, "one leader of two, named by the Lease", func() (bool, error) {
		lease, err := e.lease(ctx)
		if err != nil {
			return false, client.IgnoreNotFound(err)
		}
		holder := holderOf(lease)
		if holder == "" {
			return false, nil
		}
		var leading []*candidate
		for _, c := range e.candidates {
			if c.proc.PID() == 0 {
				continue // SIGKILLed, not started again yet
			}
			ok, err := c.proc.Leading(ctx, leaseName)
			if err != nil {
				return false, fmt.Errorf("manager %s: %w", c.name, err)
			}
			if ok {
				leading = append(leading, c)
			}
		}
		if len(leading) == 2 {
			t.Fatalf("managers a and b both lead at once (Lease holder %s)", holder)
		}
		if len(leading) != 1 {
			return false, nil
		}
		// The holder did not change while the managers were asked.
		again, err := e.lease(ctx)
		if err != nil || holderOf(again) != holder {
			return false, err
		}
		if got, want := again.Spec.LeaseDurationSeconds, int32(failoverLeaseDuration/time.Second); got == nil || *got != want {
			t.Fatalf("the Lease's leaseDurationSeconds is %v, want %d from --leader-election-lease-duration", got, want)
		}
		leader, identity = leading[0], holder
		follower = e.candidates[0]
		if follower == leader {
			follower = e.candidates[1]
		}
		return true, nil
	})
	// controller-runtime's identity: <hostname>_<uuid>, a new uuid per process.
	if !strings.HasPrefix(identity, e.hostname+"_") || len(identity) == len(e.hostname)+1 {
		t.Fatalf("Lease holder %q is not <hostname>_<uuid> (hostname %s)", identity, e.hostname)
	}
	if e.holder != "" && identity != e.holder {
		t.Fatalf("the Lease moved from %s to %s without a failover", e.holder, identity)
	}
	e.holder = identity
	return leader, follower, identity
}

// waitInstallPlan waits until the one Subscription for PGO names an
// InstallPlan carrying csv (OLM has resolved the install or upgrade; the
// leader may have approved it already) and returns the plan's name.
func (e *electorate) waitInstallPlan(t *testing.T, csv string) string {
	t.Helper()
	ctx := context.Background()
	var name string
	e.waits.Eventually(t, "the Subscription's InstallPlan for "+csv, func() (bool, error) {
		subs, err := subscriptionsFor(ctx, installNS, pgoPackage)
		if err != nil || len(subs) != 1 || subs[0].Status.InstallPlanRef == nil {
			return false, err
		}
		plan := &operatorsv1alpha1.InstallPlan{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: installNS, Name: subs[0].Status.InstallPlanRef.Name}, plan); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if !slices.Contains(plan.Spec.ClusterServiceVersionNames, csv) {
			return false, nil
		}
		name = plan.Name
		return true, nil
	})
	return name
}

// inFlight says where the flow installing csv through plan stands, and
// fails when it has already finished: the SIGKILL would not interrupt it.
func inFlight(ctx context.Context, plan, csv string) (string, error) {
	p := &operatorsv1alpha1.InstallPlan{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: installNS, Name: plan}, p); err != nil {
		return "", fmt.Errorf("read InstallPlan %s: %w", plan, err)
	}
	where := fmt.Sprintf("InstallPlan %s approved=%t phase=%s", plan, p.Spec.Approved, p.Status.Phase)
	c := &operatorsv1alpha1.ClusterServiceVersion{}
	switch err := k8s.Get(ctx, client.ObjectKey{Namespace: installNS, Name: csv}, c); {
	case apierrors.IsNotFound(err):
		return where + ", CSV " + csv + " not there yet", nil
	case err != nil:
		return "", fmt.Errorf("read CSV %s: %w", csv, err)
	case c.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded:
		return "", fmt.Errorf("%s, CSV %s already Succeeded: the flow finished before the kill point", where, csv)
	default:
		return fmt.Sprintf("%s, CSV %s in phase %q", where, csv, c.Status.Phase), nil
	}
}

// failOver SIGKILLs the leader while plan's install of csv is in flight and
// waits until the Lease names the other manager; it returns how long that
// took from the SIGKILL. The killed manager then starts again, as a new
// process with a new identity, and must wait as the follower.
func (e *electorate) failOver(t *testing.T, point, plan, csv string) time.Duration {
	t.Helper()
	ctx := context.Background()
	leader, follower, held := e.leader(t)
	// Only the leader reconciles: the manager that waits has reconciled nothing.
	if n, err := follower.proc.ReconcileTotal(ctx); err != nil || n != 0 {
		t.Fatalf("manager %s, not leading, has reconciled %v stacks (err %v): the election did not hold it back", follower.name, n, err)
	}
	where, err := inFlight(ctx, plan, csv)
	if err != nil {
		t.Fatalf("%s: %v", point, err)
	}
	pid := leader.proc.PID()
	killedAt := time.Now()
	leader.proc.Kill()
	counts.add(&counts.leaderKills, 1)

	var takenAt time.Time
	e.waits.Eventually(t, "the Lease taken from the killed leader "+held, func() (bool, error) {
		lease, err := e.lease(ctx)
		if err != nil {
			return false, err
		}
		if holder := holderOf(lease); holder != "" && holder != held {
			takenAt = time.Now()
			return true, nil
		}
		return false, nil
	})
	takeover := takenAt.Sub(killedAt)
	e.holder = "" // the one move of leadership the test expects
	survivor, _, taker := e.leader(t)
	if survivor != follower || taker == held {
		t.Fatalf("after the SIGKILL of manager %s (%s), manager %s (%s) leads", leader.name, held, survivor.name, taker)
	}
	t.Logf("%s: SIGKILLed leader %s (pid %d, %s) with %s; manager %s (%s) held the Lease %s later (bound %s; lease duration + retry period %s)",
		point, leader.name, pid, held, where, follower.name, taker, takeover.Round(time.Millisecond), takeoverBound, failoverLeaseDuration+failoverRetryPeriod)
	if takeover > takeoverBound {
		t.Fatalf("%s: manager %s took the Lease %s after the leader's SIGKILL, over the bound %s", point, follower.name, takeover.Round(time.Millisecond), takeoverBound)
	}
	if err := follower.proc.Exited(); err != nil {
		t.Fatalf("manager %s: %v", follower.name, err)
	}

	// The killed manager comes back, as a pod would, and waits its turn.
	must(t, leader.proc.Resume())
	if err := leader.proc.WaitServing(ctx, time.Minute); err != nil {
		t.Fatalf("manager %s after its restart: %v", leader.name, err)
	}
	return takeover
}

// approvedOnceInPolicy checks the ledger from index from on: every approval
// is pgstack's, of a Manual plan (pgstack's Subscriptions are Manual), whose
// CSVs are all in allowed; no CSV is approved in two plans; each of want is
// approved exactly once.
func approvedOnceInPolicy(t *testing.T, from int, allowed, want []string) {
	t.Helper()
	bad := approvalsOutside(from, func(a ledger.Approval) bool {
		if a.Manager != pgstackApprover || a.Approval != operatorsv1alpha1.ApprovalManual || len(a.CSVNames) == 0 {
			return false
		}
		for _, csv := range a.CSVNames {
			if !slices.Contains(allowed, csv) {
				return false
			}
		}
		return true
	})
	if len(bad) > 0 {
		t.Fatalf("InstallPlans approved outside policy: %+v", bad)
	}
	perCSV := map[string][]string{}
	for _, a := range approvals.Approvals()[from:] {
		for _, csv := range a.CSVNames {
			perCSV[csv] = append(perCSV[csv], a.Name)
		}
	}
	for csv, plans := range perCSV {
		if len(plans) > 1 {
			t.Fatalf("%s approved in %d InstallPlans: %v", csv, len(plans), plans)
		}
	}
	for _, csv := range want {
		if len(perCSV[csv]) != 1 {
			t.Fatalf("want %s approved in exactly one InstallPlan, got %v (ledger: %+v)", csv, perCSV[csv], approvals.Approvals()[from:])
		}
	}
}

// catalogHead is the newest version of PGO the catalog serves now: what a
// new Subscription installs.
func catalogHead(t *testing.T) string {
	t.Helper()
	for _, p := range lc.Packages() {
		if p.Name == pgoPackage && len(p.Versions) > 0 {
			return p.Versions[len(p.Versions)-1]
		}
	}
	t.Fatalf("the catalog serves no %s", pgoPackage)
	return ""
}
