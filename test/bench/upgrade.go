package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/restarts"
)

// upgradeImageTag marks the images of the releases the upgrade phases
// publish; pods running them take Config.DatabaseStart to start
// (upgradePodStarts), as PostgreSQL's start does, where a kwok pod is
// otherwise Ready at once and no two restarts would overlap.
const upgradeImageTag = "-bench-upgrade-"

func upgradePodStarts(start time.Duration) []cluster.PodStart {
	return []cluster.PodStart{{Match: fmt.Sprintf(`.spec.containers[0].image | contains(%q)`, upgradeImageTag), Delay: start}}
}

// upgradeConcurrency is the rollout policy's maxConcurrent for n stacks.
func upgradeConcurrency(n int) int { return max(1, n/10) }

// upgradePhase publishes a PGO release whose default images all change and
// measures how the stacks' clusters restart: the most restarting at once,
// and the seconds from pgstack's approval of the plan to the last cluster
// Ready on the new images. With a policy, the install namespace's
// PostgresRolloutPolicy stages it (maxConcurrent n/10, soak 1 s); without,
// PGO restarts every cluster as soon as it runs.
func (r *round) upgradePhase(withPolicy bool) func(context.Context) error {
	return func(ctx context.Context) error {
		label := "without a rollout policy"
		if withPolicy {
			label = fmt.Sprintf("with a rollout policy (maxConcurrent %d)", upgradeConcurrency(r.n))
			policy := &platformv1alpha1.PostgresRolloutPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: cluster.OperatorsNamespace, Name: platformv1alpha1.RolloutPolicyName},
				Spec: platformv1alpha1.PostgresRolloutPolicySpec{MaxConcurrent: int32(upgradeConcurrency(r.n)),
					SoakTime: metav1.Duration{Duration: time.Second}, ProgressDeadline: metav1.Duration{Duration: r.cfg.PhaseTimeout}},
			}
			if err := createObject(ctx, r.client, policy); err != nil {
				return err
			}
		}
		keys := append(stackKeys(r.n, mainNamespace, stackName), stackKeys(r.w, waitingNamespace, stackName)...)
		rec, err := restarts.Record(ctx, r.lc.Config, func(ns string) bool { return strings.HasPrefix(ns, "bench-") })
		if err != nil {
			return err
		}
		defer rec.Stop()

		var pgo catalog.Package
		for _, p := range r.lc.Packages() {
			if p.Name == catalog.PGOPackage {
				pgo = p
			}
		}
		version, err := pgo.NextVersion()
		if err != nil {
			return err
		}
		head := pgo.Versions[len(pgo.Versions)-1]
		release, ok := pgo.ReleaseFor(head)
		if !ok {
			return fmt.Errorf("no PGO release for %s", head)
		}
		suffix := upgradeImageTag + "a"
		if withPolicy {
			suffix = upgradeImageTag + "b"
		}
		r.say("[N=%d] operator upgrade %s: publishing PGO %s with new default images", r.n, label, version)
		if err := r.lc.Publish(ctx, pgo.WithVersion(version, release.Retagged(suffix), nil)); err != nil {
			return err
		}
		csv := pgo.CSVName(version)
		var approvedAt time.Time
		if err := r.await(ctx, "pgstack approves "+csv, r.cfg.PhaseTimeout, func() (bool, string) {
			plans := &operatorsv1alpha1.InstallPlanList{}
			if err := r.client.List(ctx, plans, client.InNamespace(cluster.OperatorsNamespace)); err != nil {
				return false, err.Error()
			}
			for _, p := range plans.Items {
				if p.Spec.Approved && slices.Contains(p.Spec.ClusterServiceVersionNames, csv) {
					approvedAt = time.Now()
					return true, ""
				}
			}
			return false, "no approved plan yet"
		}); err != nil {
			return err
		}
		if err := r.await(ctx, "every cluster on "+csv+"'s images", r.cfg.PhaseTimeout, func() (bool, string) {
			spans := rec.Spans()
			return spans.AllDone(keys), fmt.Sprintf("%d of %d clusters restarting or restarted", len(spans), len(keys))
		}); err != nil {
			return err
		}
		spans := rec.Stop()
		most, took := spans.MaxConcurrent(), seconds(spans.LastDone().Sub(approvedAt))
		if withPolicy {
			r.result.UpgradeMaxRestartingWithPolicy, r.result.UpgradeSecondsWithPolicy = most, took
			r.result.UpgradePolicyMaxConcurrent = upgradeConcurrency(r.n)
			if most > 0 {
				r.result.UpgradeRestartingRatio = round2(float64(r.result.UpgradeMaxRestarting) / float64(most))
			}
		} else {
			r.result.UpgradeMaxRestarting, r.result.UpgradeSeconds = most, took
		}
		r.say("[N=%d] operator upgrade %s: %d clusters restarted, at most %d at once; %.1fs from approval to all on the new images",
			r.n, label, len(spans), most, took)
		return nil
	}
}
