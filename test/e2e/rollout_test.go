package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/restarts"
)

// rolloutPodStarts: in this scenario's namespaces a database pod takes a
// few seconds to start, as PostgreSQL does (a kwok pod is otherwise Ready at
// once, and no two restarts would overlap), and the first canary's images
// tagged -broken never get Ready. kwok starts the pods so: a pod is never
// Ready for a moment first.
var rolloutPodStarts = []cluster.PodStart{
	{Match: `(.metadata.namespace == "wave-00") and (.spec.containers[0].image | endswith("-broken"))`, NeverReady: true},
	{Match: `.metadata.namespace | startswith("wave-")`, Delay: 3 * time.Second},
}

const (
	rolloutStacks   = 12
	rolloutCanaries = 3
	// rolloutConcurrency is the policy's maxConcurrent.
	rolloutConcurrency = 2
)

// TestOperatorUpgradesRollOutInWaves publishes PGO upgrades that change
// every default image to 12 stacks (three canaries) on real OLM and real
// PGO, first PGO's real 5.8.9 over 5.8.8 when run on a cluster of its own
// (make test does): without a rollout policy PGO restarts every cluster at once; with one,
// approval restarts none, the canaries go first, then at most two at a
// time; a canary kept un-Ready halts the rollout with the rest untouched,
// and rolling back moves it back.
func TestOperatorUpgradesRollOutInWaves(t *testing.T) {
	ctx := context.Background()
	// Earlier scenarios may leave an upgrade refused by a stack's range:
	// every stack accepts any version here, so the catalog's head installs.
	all := &platformv1alpha1.PostgresStackList{}
	must(t, k8s.List(ctx, all))
	for i := range all.Items {
		if s := &all.Items[i]; s.Spec.Operator.Versions != "" || s.Spec.Operator.Approval == platformv1alpha1.ApprovalManual {
			update(t, s, func(s *platformv1alpha1.PostgresStack) {
				s.Spec.Operator.Versions, s.Spec.Operator.Approval = "", platformv1alpha1.ApprovalAutomatic
			})
		}
	}
	var stacks []*platformv1alpha1.PostgresStack
	for i := 0; i < rolloutStacks; i++ {
		i := i
		stacks = append(stacks, createStack(t, fmt.Sprintf("wave-%02d", i), fmt.Sprintf("db%02d", i), func(s *platformv1alpha1.PostgresStack) {
			no := false
			s.Spec.Postgres.Backups.Enabled = &no
			if i < rolloutCanaries {
				s.Spec.Operator.RolloutWave = new(int32(0))
			}
		}))
	}
	for _, s := range stacks {
		waitCondition(t, s, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
	// This scenario owns the operator: stacks left by earlier scenarios
	// (some stalled on purpose) leave, keeping their databases or not as
	// they say.
	for i := range all.Items {
		must(t, client.IgnoreNotFound(k8s.Delete(ctx, &all.Items[i])))
	}
	waitOperatorSettled(t)

	t.Run("without a rollout policy PGO restarts every cluster at once, as the preview said", func(t *testing.T) {
		// A person decides on this one: the plan waits, with its preview.
		update(t, stacks[0], func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Approval = platformv1alpha1.ApprovalManual })
		rec := recordRestarts(t)
		before := instanceImages(t)
		// PGO's real next release when the catalog has it (5.8.9 on a
		// cluster of its own, from 5.8.8: make test runs it so), else the
		// head's release with every default image changed.
		version := nextPGOVersion(t)
		next, ok := pgoPackage(t).ReleaseFor(version)
		if !ok || next.Version != version {
			next = pgoRelease(t, headVersion(t)).Retagged("-plain")
		}
		t.Logf("publishing PGO %s (its own release: %v) over %s", version, next.Version == version, headVersion(t))
		from := envValue(t, pgoRelease(t, headVersion(t)), pgo.PostgresEnv(16, ""))
		to := envValue(t, next, pgo.PostgresEnv(16, ""))
		publishPGO(t, version, next, nil)
		previewed := map[string]bool{}
		plan := ""
		for _, s := range stacks {
			waitFor(t, s, key(s)+"'s preview of "+version, func(got *platformv1alpha1.PostgresStack) bool {
				p := got.Status.Operator.PendingUpgrade
				if p == nil || p.Version != version {
					return false
				}
				if p.ClusterRestarts && hasChange(p.Images, pgo.ComponentPostgres, from, to) {
					previewed[key(s)], plan = true, p.InstallPlan
				}
				return true
			})
		}
		for name, images := range before {
			if strings.HasPrefix(name, "wave-") && !strings.Contains(images, "database="+from+" ") && !strings.HasSuffix(images, "database="+from) {
				t.Errorf("%s runs %s, not the image the preview names as its from (%s)", name, images, from)
			}
		}
		approveAsAPerson(t, plan)
		waitRestarted(t, rec, stackNames(stacks, 0, rolloutStacks))
		spans := rec.Stop()
		t.Logf("without a policy: PGO restarted %d clusters, at most %d at once", len(spans), spans.MaxConcurrent())
		for cluster := range spans {
			if !previewed[cluster] {
				t.Errorf("PGO restarted %s, which the preview did not name", cluster)
			}
		}
		if len(previewed) != rolloutStacks || len(spans) != rolloutStacks {
			t.Errorf("previewed %d restarts, PGO restarted %d clusters; want all %d", len(previewed), len(spans), rolloutStacks)
		}
		update(t, stacks[0], func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Approval = platformv1alpha1.ApprovalAutomatic })
		for _, s := range stacks {
			waitCondition(t, s, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		}
	})

	policy := &platformv1alpha1.PostgresRolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "operators", Name: platformv1alpha1.RolloutPolicyName},
		Spec: platformv1alpha1.PostgresRolloutPolicySpec{MaxConcurrent: rolloutConcurrency,
			SoakTime: metav1.Duration{Duration: 2 * time.Second}, ProgressDeadline: metav1.Duration{Duration: 2 * time.Minute}},
	}
	must(t, k8s.Create(ctx, policy))
	waitOperatorSettled(t)

	t.Run("with a policy, approval restarts none; canaries first, then at most two at a time", func(t *testing.T) {
		rec := recordRestarts(t)
		to := nextPGOVersion(t)
		publishPGO(t, to, pgoRelease(t, headVersion(t)).Retagged("-waves"), nil)
		ro := waitRollout(t, policy, platformv1alpha1.RolloutComplete, "postgresoperator.v"+to)
		waitRestarted(t, rec, stackNames(stacks, 0, rolloutStacks))
		spans := rec.Stop()
		t.Logf("with a policy (maxConcurrent %d): %d clusters restarted, at most %d at once", rolloutConcurrency, len(spans), spans.MaxConcurrent())
		if got := spans.MaxConcurrent(); got > rolloutConcurrency {
			t.Errorf("%d clusters restarted at once, policy allows %d", got, rolloutConcurrency)
		}
		released := map[string]time.Time{}
		for _, c := range ro.Clusters {
			if c.ReleasedAt == nil || c.State != platformv1alpha1.ClusterUpdated {
				t.Errorf("cluster %+v not released and updated", c)
				continue
			}
			released[c.Stack] = c.ReleasedAt.Time
		}
		lastCanary := time.Time{}
		for _, s := range stacks[:rolloutCanaries] {
			if done := spans[key(s)].Done; done.After(lastCanary) {
				lastCanary = done
			}
		}
		for i, s := range stacks {
			span, ok := spans[key(s)]
			if !ok {
				t.Errorf("%s never restarted", key(s))
				continue
			}
			// The operator upgrade itself restarted nothing: each cluster's
			// pods changed only after pgstack released it.
			if at, ok := released[key(s)]; !ok || span.Start.Before(at.Truncate(time.Second)) {
				t.Errorf("%s restarted at %s, before its release (%v)", key(s), span.Start.Format(time.RFC3339Nano), at)
			}
			if i >= rolloutCanaries && span.Start.Before(lastCanary) {
				t.Errorf("%s (wave 1) restarted at %s, before the last canary was done at %s", key(s), span.Start.Format(time.RFC3339Nano), lastCanary.Format(time.RFC3339Nano))
			}
		}
		for _, s := range stacks {
			waitFor(t, s, key(s)+" reports it runs the new images", func(got *platformv1alpha1.PostgresStack) bool {
				r := got.Status.Operator.Rollout
				return r != nil && r.State == platformv1alpha1.ClusterUpdated && r.ToCSV == "postgresoperator.v"+to
			})
		}
	})

	t.Run("a configuration the policy owns rolls out like an upgrade: pinned, applied, then in waves", func(t *testing.T) {
		setPolicy(t, policy, func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.MaxConcurrent = 4 })
		installed := pgoRelease(t, headVersion(t))
		image := envValue(t, installed, pgo.PostgresEnv(16, ""))
		mirror := corev1.EnvVar{Name: pgo.PostgresEnv(16, ""), Value: image + "-mirror"}
		lastConfig := ""
		for _, step := range []struct {
			what string
			env  []corev1.EnvVar
			want string // the database image every cluster runs after it
		}{
			{"a mirrored PostgreSQL 16 image", []corev1.EnvVar{mirror}, mirror.Value},
			{"the mirror dropped again", nil, image},
		} {
			rec := recordRestarts(t)
			setPolicy(t, policy, func(s *platformv1alpha1.PostgresRolloutPolicySpec) {
				s.OperatorConfig = &platformv1alpha1.OperatorConfig{Env: step.env}
			})
			var ro *platformv1alpha1.RolloutStatus
			eventually(t, step.what+": a configuration rollout completes", func() (bool, error) {
				cur := &platformv1alpha1.PostgresRolloutPolicy{}
				if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(policy), cur); err != nil {
					return false, err
				}
				ro = cur.Status.Rollout
				return ro != nil && ro.FromConfig != ro.ToConfig && ro.ToConfig != lastConfig && ro.Phase == platformv1alpha1.RolloutComplete, nil
			})
			lastConfig = ro.ToConfig
			if len(ro.Clusters) != rolloutStacks {
				t.Errorf("%s: rollout %s -> %s over %d clusters, want a configuration change over %d", step.what, ro.FromConfig, ro.ToConfig, len(ro.Clusters), rolloutStacks)
			}
			waitRestarted(t, rec, stackNames(stacks, 0, rolloutStacks))
			spans := rec.Stop()
			t.Logf("%s: %d clusters restarted, at most %d at once", step.what, len(spans), spans.MaxConcurrent())
			if spans.MaxConcurrent() > 4 {
				t.Errorf("%s: %d clusters restarted at once, the policy allows 4", step.what, spans.MaxConcurrent())
			}
			for name, images := range instanceImages(t) {
				if strings.HasPrefix(name, "wave-") && !strings.Contains(images, "database="+step.want+" ") && !strings.HasSuffix(images, "database="+step.want) {
					t.Errorf("%s: %s runs %s, want database %s", step.what, name, images, step.want)
				}
			}
			sub := subscriptions(t)[0]
			if got := sub.Spec.Config; (len(step.env) > 0) != (got != nil && len(got.Env) == 1 && got.Env[0] == mirror) {
				t.Errorf("%s: the Subscription's config is %+v", step.what, got)
			}
		}
		setPolicy(t, policy, func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.MaxConcurrent = rolloutConcurrency })
	})

	t.Run("a canary kept un-Ready halts the rollout with the rest untouched; rolling back moves it back", func(t *testing.T) {
		failing := stacks[0]
		before := instanceImages(t)
		setPolicy(t, policy, func(s *platformv1alpha1.PostgresRolloutPolicySpec) {
			s.ProgressDeadline = metav1.Duration{Duration: 20 * time.Second}
		})
		// The canary's new image never gets Ready (rolloutPodStarts).
		to := nextPGOVersion(t)
		publishPGO(t, to, pgoRelease(t, headVersion(t)).Retagged("-broken"), nil)
		ro := waitRollout(t, policy, platformv1alpha1.RolloutHalted, "postgresoperator.v"+to)
		if !strings.Contains(ro.Message, key(failing)) {
			t.Errorf("halted rollout's message %q does not name %s", ro.Message, key(failing))
		}
		for _, s := range stacks[rolloutCanaries:] {
			for name, images := range instanceImages(t) {
				if strings.HasPrefix(name, s.Namespace+"/") && images != before[name] {
					t.Errorf("halted rollout restarted %s (wave 1): %s -> %s", name, before[name], images)
				}
			}
		}
		waitFor(t, failing, "the failing canary reports Failed", func(got *platformv1alpha1.PostgresStack) bool {
			r := got.Status.Operator.Rollout
			return r != nil && r.State == platformv1alpha1.ClusterFailed
		})

		setPolicy(t, policy, func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.RollBack = true })
		waitRollout(t, policy, platformv1alpha1.RolloutRolledBack, "postgresoperator.v"+to)
		eventually(t, "the failing canary runs its old images again", func() (bool, error) {
			for name, images := range instanceImages(t) {
				if strings.HasPrefix(name, failing.Namespace+"/") && images != before[name] {
					return false, nil
				}
			}
			return true, nil
		})
		waitCondition(t, failing, platformv1alpha1.ConditionClusterReady, metav1.ConditionTrue, "")
	})
}

func key(s *platformv1alpha1.PostgresStack) string { return s.Namespace + "/" + s.Name }

func stackNames(stacks []*platformv1alpha1.PostgresStack, from, to int) []string {
	var out []string
	for _, s := range stacks[from:to] {
		out = append(out, key(s))
	}
	return out
}

// headVersion is the newest PGO version the catalog serves.
func headVersion(t *testing.T) string {
	versions := pgoPackage(t).Versions
	return versions[len(versions)-1]
}

// nextPGOVersion is the catalog's newest PGO version with its patch raised.
func nextPGOVersion(t *testing.T) string {
	t.Helper()
	v, err := pgoPackage(t).NextVersion()
	must(t, err)
	return v
}

// waitOperatorSettled waits until the Subscription has installed what it
// resolved and its CSV runs.
func waitOperatorSettled(t *testing.T) {
	t.Helper()
	eventually(t, "the operator settles on the catalog's head", func() (bool, error) {
		for _, sub := range subscriptions(t) {
			csv := &operatorsv1alpha1.ClusterServiceVersion{}
			if sub.Status.InstalledCSV == "" || sub.Status.InstalledCSV != sub.Status.CurrentCSV ||
				k8s.Get(context.Background(), client.ObjectKey{Namespace: sub.Namespace, Name: sub.Status.InstalledCSV}, csv) != nil ||
				csv.Status.Phase != operatorsv1alpha1.CSVPhaseSucceeded || sub.Status.InstalledCSV != pgoPackage(t).Head() {
				return false, nil
			}
		}
		return true, nil
	})
}

// setPolicy changes the policy's spec as a person would (again on a conflict).
func setPolicy(t *testing.T, p *platformv1alpha1.PostgresRolloutPolicy, change func(*platformv1alpha1.PostgresRolloutPolicySpec)) {
	t.Helper()
	eventually(t, "change the rollout policy", func() (bool, error) {
		cur := &platformv1alpha1.PostgresRolloutPolicy{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), cur); err != nil {
			return false, err
		}
		change(&cur.Spec)
		err := k8s.Update(context.Background(), cur)
		return err == nil, ignoreConflict(err)
	})
}

// waitRollout waits until the policy's rollout to csv reaches phase.
func waitRollout(t *testing.T, p *platformv1alpha1.PostgresRolloutPolicy, phase platformv1alpha1.RolloutPhase, csv string) *platformv1alpha1.RolloutStatus {
	t.Helper()
	var got *platformv1alpha1.RolloutStatus
	defer func() {
		if t.Failed() && got != nil {
			t.Logf("rollout last seen: %s -> %s %s: %s", got.FromCSV, got.ToCSV, got.Phase, got.Message)
			for _, c := range got.Clusters {
				t.Logf("  %s wave %d %s released %v updated %v", c.Stack, c.Wave, c.State, c.ReleasedAt, c.UpdatedAt)
			}
		}
	}()
	waits.Eventually(t, fmt.Sprintf("rollout to %s %s", csv, phase), func() (bool, error) {
		cur := &platformv1alpha1.PostgresRolloutPolicy{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), cur); err != nil {
			return false, err
		}
		got = cur.Status.Rollout
		return got != nil && got.ToCSV == csv && got.Phase == phase, nil
	})
	return got
}

// recordRestarts watches the instance StatefulSets of this scenario's
// stacks (namespaces wave-*). Clusters left by earlier scenarios have no
// stack: PGO restarts them as it always did.
func recordRestarts(t *testing.T) *restarts.Recorder {
	t.Helper()
	rec, err := restarts.Record(context.Background(), lc.Config, func(ns string) bool { return strings.HasPrefix(ns, "wave-") })
	must(t, err)
	return rec
}

// waitRestarted waits until every named cluster finished a restart.
func waitRestarted(t *testing.T, rec *restarts.Recorder, clusters []string) {
	t.Helper()
	eventually(t, "every cluster restarted and Ready on its new template", func() (bool, error) {
		return rec.Spans().AllDone(clusters), nil
	})
}
