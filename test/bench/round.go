package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/test/auditlog"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/managerproc"
	"github.com/pgstack/pgstack/test/testenv"
)

const (
	stackName    = "db"
	bareName     = "db-bare" // the baseline's PostgresCluster, beside the stack's own
	createrCount = 16        // concurrent creates, the same for pgstack and the baseline
)

// round is one run of every phase at one count, on a fresh cluster.
type round struct {
	cfg    Config
	n      int // stacks timed against the baseline
	w      int // stacks created before PGO is installed
	say    func(format string, args ...any)
	lc     *cluster.Cluster
	client client.Client
	track  *tracker
	mgr    *managerproc.Process
	// managerOpts start the manager, which runs twice in a round.
	managerOpts managerproc.Options
	// pprofAddr serves the manager's Go profiles.
	pprofAddr string
	audit     *auditLog
	result    Round
	// namespacesCreated is when the stacks' namespaces were created, from
	// which OLM's copying is timed.
	namespacesCreated time.Time
}

// namespaces for the timed stacks (each also holds its baseline
// PostgresCluster) and for the stacks that wait for the operator.
func mainNamespace(i int) string    { return fmt.Sprintf("bench-%04d", i) }
func waitingNamespace(i int) string { return fmt.Sprintf("bench-wait-%04d", i) }

func runRound(ctx context.Context, cfg Config, n int, say func(string, ...any)) (_ Round, err error) {
	r := &round{cfg: cfg, n: n, w: waitingCount(n), say: say}
	r.result = Round{Stacks: n, WaitingStacks: r.w, LoadAverage: [2]float64{loadAverage(), 0}}
	begin := time.Now()
	dir, err := os.MkdirTemp("", "pgstack-bench-")
	if err != nil {
		return Round{}, fmt.Errorf("create the bench directory: %w", err)
	}
	if os.Getenv(cluster.KeepDirEnv) == "" {
		defer os.RemoveAll(dir)
	} else {
		defer say("[N=%d] kept the audit log and the manager's kubeconfig in %s", n, dir)
	}
	audit, apiserverArgs, err := auditlog.Enable(dir, auditedWrites)
	if err != nil {
		return Round{}, err
	}
	r.audit = &auditLog{path: audit.Path}

	say("[N=%d] starting a fresh local cluster (real OLM, kwok, opm) with the audit log on", n)
	start := cfg.DatabaseStart
	if start == 0 {
		start = 5 * time.Second
	}
	r.lc, err = cluster.StartFull(ctx, cluster.Options{APIServerArgs: apiserverArgs, PodStarts: upgradePodStarts(start)})
	if err != nil {
		return Round{}, fmt.Errorf("start the local cluster: %w", err)
	}
	defer func() {
		if stopErr := r.lc.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The bench's own client is not throttled client-side: it may not be
	// what limits both runs and hides pgstack's cost.
	unthrottled := rest.CopyConfig(r.lc.Config)
	unthrottled.QPS, unthrottled.Burst = -1, 0
	if r.client, err = client.New(unthrottled, client.Options{Scheme: testenv.NewScheme()}); err != nil {
		return Round{}, fmt.Errorf("create the bench's client: %w", err)
	}
	if r.track, err = newTracker(unthrottled, cluster.OperatorsNamespace); err != nil {
		return Round{}, err
	}
	if err := r.track.start(runCtx); err != nil {
		return Round{}, err
	}

	kubeconfig := filepath.Join(dir, "manager.kubeconfig")
	if err := managerKubeconfig(ctx, r.lc, kubeconfig); err != nil {
		return Round{}, err
	}
	// Go's profiles, for the live heap at the end of the round.
	pprofPort, err := cluster.FreePort()
	if err != nil {
		return Round{}, err
	}
	r.pprofAddr = "127.0.0.1:" + strconv.Itoa(pprofPort)
	r.managerOpts = managerproc.Options{Binary: cfg.Manager, Kubeconfig: kubeconfig,
		LogPath: filepath.Join(r.lc.Dir, "logs", "pgstack-manager.log"),
		Args:    append([]string{"--pprof-bind-address=" + r.pprofAddr}, cfg.ManagerArgs...)}
	if err := r.startManager(ctx); err != nil {
		return Round{}, err
	}
	defer func() { r.mgr.Stop() }()

	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"namespaces for the waiting stacks", r.createWaitingNamespaces},
		{"stacks waiting for the operator", r.waitingPhase},
		{"stopping the manager", r.stopManager},
		{"namespaces", r.createMainNamespaces},
		{"copied CSVs", r.awaitCopiedCSVs},
		{"baseline", r.baselinePhase},
		{"removing the baseline", r.removeBaseline},
		{"starting the manager again", r.restartManager},
		{"pgstack", r.pgstackPhase},
		{"steady state", r.idlePhase},
	}
	if cfg.UpgradesUpTo == 0 || n <= cfg.UpgradesUpTo {
		steps = append(steps, []struct {
			name string
			run  func(context.Context) error
		}{
			{"operator upgrade without a rollout policy", r.upgradePhase(false)},
			{"operator upgrade with a rollout policy", r.upgradePhase(true)},
		}...)
	} else {
		say("[N=%d] no operator upgrades in this round (UPGRADES_UP_TO=%d)", n, cfg.UpgradesUpTo)
	}
	for _, step := range steps {
		if err := step.run(ctx); err != nil {
			say("[N=%d] %s failed; manager log (last lines):\n%s", n, step.name, r.lc.LogTail("pgstack-manager", 20))
			return Round{}, fmt.Errorf("N=%d, %s: %w", n, step.name, err)
		}
		if err := r.mgr.Exited(); err != nil {
			return Round{}, fmt.Errorf("N=%d, after %s: %w", n, step.name, err)
		}
	}
	mem, err := r.mgr.Memory()
	if err != nil {
		return Round{}, err
	}
	r.result.PeakRSSMiB = round2(max(mem.PeakRSS, r.result.PeakRSSMiB))
	r.result.RSSAnonMiB, r.result.RSSFileMiB = round2(mem.Anon), round2(mem.File)
	final, err := scrape(ctx, r.mgr)
	if err != nil {
		return Round{}, err
	}
	r.result.HeapInuseMiB = round2(final.HeapInuseBytes / (1 << 20))
	live, err := liveHeapBytes(ctx, r.pprofAddr)
	if err != nil {
		return Round{}, err
	}
	r.result.HeapLiveMiB = round2(live / (1 << 20))
	r.result.RoundSeconds = seconds(time.Since(begin))
	r.result.LoadAverage[1] = loadAverage()
	say("[N=%d] done in %s; manager peak RSS %.1f MiB", n, time.Since(begin).Round(time.Second), r.result.PeakRSSMiB)
	return r.result, nil
}

func (r *round) startManager(ctx context.Context) error {
	var err error
	if r.mgr, err = managerproc.Start(r.managerOpts); err != nil {
		return err
	}
	return r.mgr.WaitServing(ctx, time.Minute)
}

// stopManager stops the manager for the baseline, after reading its peak
// RSS: the baseline's PostgresClusters are not pgstack's, and a manager
// watching them would both slow the baseline down and cache a thousand
// foreign objects (it caches every PostgresCluster in the cluster).
func (r *round) stopManager(context.Context) error {
	mem, err := r.mgr.Memory()
	if err != nil {
		return err
	}
	r.result.PeakRSSMiB = mem.PeakRSS
	r.mgr.Stop()
	r.say("[N=%d] stopped the manager for the baseline (peak RSS so far %.1f MiB)", r.n, mem.PeakRSS)
	return nil
}

// restartManager starts the manager again once the baseline is gone and
// waits until it has written nothing for two seconds: the waiting stacks are
// Ready, so a restart should write nothing for them.
func (r *round) restartManager(ctx context.Context) error {
	before, err := r.audit.read()
	if err != nil {
		return err
	}
	if err := r.startManager(ctx); err != nil {
		return err
	}
	after, err := r.settledWrites(ctx)
	if err != nil {
		return err
	}
	r.result.RestartWrites = after.minus(before).total()
	r.say("[N=%d] started the manager again; it wrote %g times for the %d Ready waiting stacks", r.n, r.result.RestartWrites, r.w)
	return nil
}

// removeBaseline deletes the baseline's PostgresClusters and waits until they are gone.
func (r *round) removeBaseline(ctx context.Context) error {
	err := parallel(ctx, r.n, func(ctx context.Context, i int) error {
		pc := pgo.NewPostgresCluster()
		pc.SetNamespace(mainNamespace(i))
		pc.SetName(bareName)
		if err := r.client.Delete(ctx, pc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %s/%s: %w", pc.GetNamespace(), bareName, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.await(ctx, "baseline PostgresClusters gone", r.cfg.PhaseTimeout, func() (bool, string) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(pgo.PostgresClusterGVK.GroupVersion().WithKind("PostgresClusterList"))
		if err := r.client.List(ctx, list); err != nil {
			return false, err.Error()
		}
		left := 0
		for _, pc := range list.Items {
			if pc.Name == bareName {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d left", left)
	})
}

// waitingCount is how many stacks wait for the operator in a round of n.
func waitingCount(n int) int { return max(1, n/10) }

// createWaitingNamespaces creates the waiting stacks' namespaces before
// PGO is installed. The other namespaces come after the install: with 1,100
// namespaces created just before it, OLM's olm operator was still working
// through them with PGO's CSV Pending after 4 minutes, which is OLM's cost
// on new namespaces, not pgstack's (a real cluster's namespaces are old).
func (r *round) createWaitingNamespaces(ctx context.Context) error {
	names := make([]string, r.w)
	for i := range names {
		names[i] = waitingNamespace(i)
	}
	return r.createNamespaces(ctx, names)
}

func (r *round) createMainNamespaces(ctx context.Context) error {
	names := make([]string, r.n)
	for i := range names {
		names[i] = mainNamespace(i)
	}
	r.namespacesCreated = time.Now()
	return r.createNamespaces(ctx, names)
}

func (r *round) createNamespaces(ctx context.Context, names []string) error {
	begin := time.Now()
	err := parallel(ctx, len(names), func(ctx context.Context, i int) error {
		err := r.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i]}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", names[i], err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.say("[N=%d] created %d namespaces in %s", r.n, len(names), time.Since(begin).Round(10*time.Millisecond))
	return nil
}

func newStack(namespace string) *platformv1alpha1.PostgresStack {
	return &platformv1alpha1.PostgresStack{
		ObjectMeta: metav1.ObjectMeta{Name: stackName, Namespace: namespace},
		Spec:       platformv1alpha1.PostgresStackSpec{Postgres: platformv1alpha1.PostgresSpec{Version: 16}},
	}
}

func stackKeys(count int, namespace func(int) string, name string) []string {
	keys := make([]string, count)
	for i := range keys {
		keys[i] = namespace(i) + "/" + name
	}
	return keys
}

// waitingPhase creates w stacks before PGO is installed. The manager
// subscribes and approves; once OLM reports the CSV Succeeded, each waiting
// stack's PostgresCluster should follow at once.
func (r *round) waitingPhase(ctx context.Context) error {
	begin := time.Now()
	before, err := r.audit.read()
	if err != nil {
		return err
	}
	r.say("[N=%d] creating %d stacks before PGO is installed; the manager subscribes, approves, and they wait for the CSV", r.n, r.w)
	err = parallel(ctx, r.w, func(ctx context.Context, i int) error {
		return createObject(ctx, r.client, newStack(waitingNamespace(i)))
	})
	if err != nil {
		return err
	}
	if err := r.setPGOWorkers(ctx); err != nil {
		return err
	}
	if err := r.await(ctx, "PGO's CSV Succeeded", 5*time.Minute, func() (bool, string) {
		return !r.track.csvSucceededAt().IsZero(), "CSV not Succeeded yet"
	}); err != nil {
		return err
	}
	r.result.InstallSeconds = seconds(r.track.csvSucceededAt().Sub(begin))
	r.say("[N=%d] PGO's CSV Succeeded %.1fs after the first stack", r.n, r.result.InstallSeconds)
	keys := stackKeys(r.w, waitingNamespace, stackName)
	if err := r.awaitReady(ctx, "waiting stacks Ready", keys, false); err != nil {
		return err
	}
	if err := r.readPGOWorkers(ctx); err != nil {
		return err
	}
	after, err := r.audit.read()
	if err != nil {
		return err
	}
	// A PostgresCluster exists once the API server completed the manager's
	// first write of it, as the audit log records: a watch of our own could
	// sync only after the manager, which also waits for PGO's API to be
	// served, had already created it.
	csvSucceeded := r.track.csvSucceededAt()
	latencies := make([]time.Duration, 0, len(keys))
	for _, k := range keys {
		if at, ok := r.audit.clusterWrittenAt(k); ok {
			latencies = append(latencies, at.Sub(csvSucceeded))
		}
	}
	if len(latencies) != len(keys) {
		return fmt.Errorf("the audit log shows %d of %d waiting stacks' PostgresClusters written by the manager", len(latencies), len(keys))
	}
	r.result.CSVToClusterP50ms = percentileMillis(latencies, 50)
	r.result.CSVToClusterP99ms = percentileMillis(latencies, 99)
	r.result.CSVToClusterMaxms = percentileMillis(latencies, 100)
	r.result.WaitingWritesPerStack = after.minus(before).total() / float64(r.w)
	r.say("[N=%d] CSV Succeeded → PostgresCluster: p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d waiting stacks",
		r.n, r.result.CSVToClusterP50ms, r.result.CSVToClusterP99ms, r.result.CSVToClusterMaxms, r.w)
	return nil
}

// setPGOWorkers sets PGO_WORKERS on the Subscription the manager created,
// as a platform team would (OLM sets the Subscription's config.env on PGO's
// container): PGO's reconciles of PostgresClusters, two at a time by
// default, pace the baseline and pgstack alike, and on two cores they wait
// on the API server more than they use the CPU. pgstack leaves a
// Subscription's config alone without a rollout policy's operatorConfig.
func (r *round) setPGOWorkers(ctx context.Context) error {
	if r.cfg.PGOWorkers == 0 {
		return nil
	}
	var sub *operatorsv1alpha1.Subscription
	if err := r.await(ctx, "the manager's Subscription", time.Minute, func() (bool, string) {
		subs := &operatorsv1alpha1.SubscriptionList{}
		if err := r.client.List(ctx, subs, client.InNamespace(cluster.OperatorsNamespace)); err != nil {
			return false, err.Error()
		}
		for i := range subs.Items {
			if subs.Items[i].Spec != nil && subs.Items[i].Spec.Package == catalog.PGOPackage {
				sub = &subs.Items[i]
				return true, ""
			}
		}
		return false, "no Subscription yet"
	}); err != nil {
		return err
	}
	base := sub.DeepCopy()
	if sub.Spec.Config == nil {
		sub.Spec.Config = &operatorsv1alpha1.SubscriptionConfig{}
	}
	sub.Spec.Config.Env = append(sub.Spec.Config.Env, corev1.EnvVar{Name: "PGO_WORKERS", Value: strconv.Itoa(r.cfg.PGOWorkers)})
	if err := r.client.Patch(ctx, sub, client.MergeFrom(base), client.FieldOwner("pgstack-bench")); err != nil {
		return fmt.Errorf("set PGO_WORKERS on Subscription %s: %w", sub.Name, err)
	}
	r.say("[N=%d] set PGO_WORKERS=%d on Subscription %s", r.n, r.cfg.PGOWorkers, sub.Name)
	return nil
}

// readPGOWorkers records the PGO_WORKERS PGO's Deployment runs with, once
// OLM has rolled it out with the Subscription's: the figure the table shows
// is what PGO ran with, not what the bench asked for.
func (r *round) readPGOWorkers(ctx context.Context) error {
	want := strconv.Itoa(max(r.cfg.PGOWorkers, pgoDefaultWorkers))
	if r.cfg.PGOWorkers == 0 {
		want = ""
	}
	var got string
	err := r.await(ctx, "PGO's Deployment with PGO_WORKERS "+orNone(want), 2*time.Minute, func() (bool, string) {
		deployments := &appsv1.DeploymentList{}
		if err := r.client.List(ctx, deployments, client.InNamespace(cluster.OperatorsNamespace)); err != nil {
			return false, err.Error()
		}
		for _, d := range deployments.Items {
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					if e.Name == "PGO_WORKERS" {
						got = e.Value
					}
				}
			}
			if d.Status.UpdatedReplicas != d.Status.Replicas || d.Status.ReadyReplicas != d.Status.Replicas {
				return false, fmt.Sprintf("Deployment %s is rolling out", d.Name)
			}
		}
		return got == want, fmt.Sprintf("PGO_WORKERS %s", orNone(got))
	})
	if err != nil {
		return err
	}
	r.result.PGOWorkers = pgoDefaultWorkers
	if got != "" {
		if r.result.PGOWorkers, err = strconv.Atoi(got); err != nil {
			return fmt.Errorf("PGO_WORKERS %q on PGO's Deployment: %w", got, err)
		}
	}
	return nil
}

// baselinePhase is a bare client creating the PostgresClusters pgstack would
// render for the same stacks, awaiting the same readiness from PGO. They
// are named db-bare and carry no pgstack labels, so they are not the stacks'
// own (the manager, watching every PostgresCluster, ignores them).
func (r *round) baselinePhase(ctx context.Context) error {
	// The API server's defaults, taken once from a dry run, are what the
	// manager renders from.
	defaulted := newStack(mainNamespace(0))
	if err := r.client.Create(ctx, defaulted, client.DryRunAll); err != nil {
		return fmt.Errorf("dry-run a stack for its defaults: %w", err)
	}
	// Warm the bench's client for PostgresClusters (discovery, REST mapping),
	// as the waiting stacks warmed it for stacks.
	warm, err := render.Render(defaulted)
	if err != nil {
		return fmt.Errorf("render %s: %w", defaulted.Namespace, err)
	}
	if err := r.client.Create(ctx, warm, client.DryRunAll); err != nil {
		return fmt.Errorf("dry-run a PostgresCluster: %w", err)
	}
	r.say("[N=%d] baseline: a bare client creates %d rendered PostgresClusters", r.n, r.n)
	begin := time.Now()
	err = parallel(ctx, r.n, func(ctx context.Context, i int) error {
		stack := defaulted.DeepCopy()
		stack.Namespace = mainNamespace(i)
		pc, err := render.Render(stack)
		if err != nil {
			return fmt.Errorf("render %s: %w", stack.Namespace, err)
		}
		pc.SetName(bareName)
		pc.SetLabels(nil)
		return createObject(ctx, r.client, pc)
	})
	if err != nil {
		return err
	}
	r.result.BaselineAppliedSeconds = seconds(time.Since(begin))
	r.say("[N=%d] baseline: %d PostgresClusters created in %.2fs", r.n, r.n, r.result.BaselineAppliedSeconds)
	if r.cfg.BaselineReadyUpTo != 0 && r.n > r.cfg.BaselineReadyUpTo {
		r.say("[N=%d] baseline: not awaiting PGO's readiness in this round (BASELINE_READY_UP_TO=%d)", r.n, r.cfg.BaselineReadyUpTo)
		return nil
	}
	if err := r.awaitReady(ctx, "baseline PostgresClusters ready", stackKeys(r.n, mainNamespace, bareName), true); err != nil {
		return err
	}
	r.result.BaselineSeconds = seconds(time.Since(begin))
	r.say("[N=%d] baseline: %d PostgresClusters ready in %.2fs", r.n, r.n, r.result.BaselineSeconds)
	return nil
}

// pgstackPhase creates n stacks with PGO installed and times them to Ready,
// counting the manager's writes until it has settled.
func (r *round) pgstackPhase(ctx context.Context) error {
	writesBefore, err := r.audit.read()
	if err != nil {
		return err
	}
	pgoBefore := r.audit.pgoWrites()
	latencyBefore := r.audit.latency()
	metricsBefore, err := scrape(ctx, r.mgr)
	if err != nil {
		return err
	}
	changesBefore := r.track.changes()
	r.say("[N=%d] pgstack: creating %d stacks, awaiting Ready=True on each", r.n, r.n)
	begin := time.Now()
	err = parallel(ctx, r.n, func(ctx context.Context, i int) error {
		return createObject(ctx, r.client, newStack(mainNamespace(i)))
	})
	if err != nil {
		return err
	}
	keys := stackKeys(r.n, mainNamespace, stackName)
	var applied time.Time
	if err := r.await(ctx, "stacks' PostgresClusters applied", r.cfg.PhaseTimeout, func() (bool, string) {
		if _, err := r.audit.read(); err != nil {
			return false, err.Error()
		}
		count := 0
		for _, k := range keys {
			if at, ok := r.audit.clusterWrittenAt(k); ok {
				count++
				if at.After(applied) {
					applied = at
				}
			}
		}
		return count == len(keys), fmt.Sprintf("%d of %d applied", count, len(keys))
	}); err != nil {
		return err
	}
	r.result.SecondsToAllApplied = seconds(applied.Sub(begin))
	r.result.AppliedRatioToBaseline = round2(r.result.SecondsToAllApplied / r.result.BaselineAppliedSeconds)
	r.say("[N=%d] pgstack: %d stacks' PostgresClusters applied in %.2fs (%.2f× the baseline's creates)", r.n, r.n, r.result.SecondsToAllApplied, r.result.AppliedRatioToBaseline)
	if err := r.awaitReady(ctx, "stacks Ready", keys, false); err != nil {
		return err
	}
	r.result.SecondsToAllReady = seconds(time.Since(begin))
	if r.result.BaselineSeconds > 0 {
		r.result.RatioToBaseline = round2(r.result.SecondsToAllReady / r.result.BaselineSeconds)
	}
	if r.result.RatioToBaseline > 0 {
		r.say("[N=%d] pgstack: %d stacks Ready in %.2fs (%.2f× the baseline)", r.n, r.n, r.result.SecondsToAllReady, r.result.RatioToBaseline)
	} else {
		r.say("[N=%d] pgstack: %d stacks Ready in %.2fs", r.n, r.n, r.result.SecondsToAllReady)
	}
	lags := r.track.readyLags(keys)
	if len(lags) != r.n {
		return fmt.Errorf("saw PGO's readiness and the stack's Ready of %d of %d stacks", len(lags), r.n)
	}
	r.result.ReadyLagP50ms, r.result.ReadyLagP99ms = percentileMillis(lags, 50), percentileMillis(lags, 99)
	r.say("[N=%d] PGO ready → stack Ready: p50 %.0f ms, p99 %.0f ms", r.n, r.result.ReadyLagP50ms, r.result.ReadyLagP99ms)

	// Writes the manager makes just after Ready (an Event sent
	// asynchronously) belong to the stacks' way there.
	writesAfter, err := r.settledWrites(ctx)
	if err != nil {
		return err
	}
	metricsAfter, err := scrape(ctx, r.mgr)
	if err != nil {
		return err
	}
	writes := writesAfter.minus(writesBefore)
	r.result.PGOWritesPerCluster = (r.audit.pgoWrites() - pgoBefore) / float64(r.n)
	r.result.WriteLatencyMs = meanMillis(writesBefore, writesAfter, latencyBefore, r.audit.latency())
	r.result.WritesPerStack = writes.total() / float64(r.n)
	r.result.WritesPerStackByResource = map[string]float64{}
	for resource, count := range writes {
		r.result.WritesPerStackByResource[resource] = round2(count / float64(r.n))
	}
	delta := metricsAfter.minus(metricsBefore)
	r.result.ClientWritesPerStack = delta.Writes / float64(r.n)
	r.result.ReconcilesPerStack = delta.Reconciles / float64(r.n)
	r.say("[N=%d] pgstack: %.2f writes per stack (%s; PGO %.1f per cluster), %.2f reconciles per stack; objects the manager watches changed: %s",
		r.n, r.result.WritesPerStack, writes, r.result.PGOWritesPerCluster, r.result.ReconcilesPerStack, r.track.changes().minus(changesBefore))
	return nil
}

// settledWrites waits until the manager has written nothing for two
// seconds (at most 30 s) and returns its running totals.
func (r *round) settledWrites(ctx context.Context) (writeCounts, error) {
	const quiet, bound = 2 * time.Second, 30 * time.Second
	last, err := r.audit.read()
	if err != nil {
		return nil, err
	}
	lastChange, deadline := time.Now(), time.Now().Add(bound)
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for time.Since(lastChange) < quiet && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
		now, err := r.audit.read()
		if err != nil {
			return nil, err
		}
		if now.total() != last.total() {
			last, lastChange = now, time.Now()
		}
	}
	return last, nil
}

// awaitCopiedCSVs waits until OLM has copied PGO's CSV into every
// namespace: OLM's work on a thousand new namespaces would otherwise load
// the API server under the baseline and pgstack unevenly, and peak RSS is
// to be read with every copy in place (the manager's cache leaves copies
// out, so they should not move it).
func (r *round) awaitCopiedCSVs(ctx context.Context) error {
	var copied, want int
	err := r.await(ctx, "OLM's copied CSVs", r.cfg.CopyTimeout, func() (bool, string) {
		var err error
		copied, want, err = r.copiedCSVs(ctx)
		if err != nil {
			return false, err.Error()
		}
		return copied >= want, fmt.Sprintf("%d of %d namespaces have PGO's copied CSV", copied, want)
	})
	r.result.CopiedCSVs, r.result.Namespaces = copied, want+1
	if err != nil {
		// A figure with fewer copies is still worth having; the table says how many.
		r.say("[N=%d] %v; measuring on with %d of %d copies", r.n, err, copied, want)
		return nil
	}
	r.result.CopySeconds = seconds(r.track.lastCopyAt().Sub(r.namespacesCreated))
	r.say("[N=%d] OLM copied PGO's CSV into all %d other namespaces, %.0fs after they were created", r.n, copied, r.result.CopySeconds)
	return nil
}

// copiedCSVs counts PGO's copied CSVs and the namespaces OLM copies into
// (every namespace but the operator's own).
func (r *round) copiedCSVs(ctx context.Context) (copied, want int, err error) {
	csvs := &metav1.PartialObjectMetadataList{}
	csvs.SetGroupVersionKind(operatorsv1alpha1.SchemeGroupVersion.WithKind("ClusterServiceVersionList"))
	if err := r.client.List(ctx, csvs, client.HasLabels{operatorsv1alpha1.CopiedLabelKey}); err != nil {
		return 0, 0, fmt.Errorf("list copied CSVs: %w", err)
	}
	namespaces := &metav1.PartialObjectMetadataList{}
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.client.List(ctx, namespaces); err != nil {
		return 0, 0, fmt.Errorf("list namespaces: %w", err)
	}
	return len(csvs.Items), len(namespaces.Items) - 1, nil
}

// idlePhase measures a window of steady state: every stack Ready, nothing changing.
func (r *round) idlePhase(ctx context.Context) error {
	writesBefore, err := r.audit.read()
	if err != nil {
		return err
	}
	metricsBefore, err := scrape(ctx, r.mgr)
	if err != nil {
		return err
	}
	changesBefore := r.track.changes()
	r.say("[N=%d] steady state: counting the manager's writes and reconciles for %s", r.n, r.cfg.Idle)
	begin := time.Now()
	window := time.NewTimer(r.cfg.Idle)
	defer window.Stop()
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-window.C:
			waiting = false
		case <-progress.C:
			r.say("[N=%d] steady state: %s of %s", r.n, time.Since(begin).Round(time.Second), r.cfg.Idle)
		}
	}
	elapsed := time.Since(begin)
	writesAfter, err := r.audit.read()
	if err != nil {
		return err
	}
	metricsAfter, err := scrape(ctx, r.mgr)
	if err != nil {
		return err
	}
	perMinute := time.Minute.Seconds() / elapsed.Seconds()
	idle := writesAfter.minus(writesBefore)
	delta := metricsAfter.minus(metricsBefore)
	r.result.IdleSeconds = seconds(elapsed)
	r.result.IdleWritesPerMin = idle.total() * perMinute
	r.result.IdleReconcilesPerMin = delta.Reconciles * perMinute
	r.result.IdleChanges = r.track.changes().minus(changesBefore)
	r.say("[N=%d] steady state: %.1f writes/min (%s), %.1f reconciles/min; objects the manager watches changed: %s",
		r.n, r.result.IdleWritesPerMin, idle, r.result.IdleReconcilesPerMin, orNone(writeCounts(r.result.IdleChanges).String()))
	return nil
}

// awaitReady waits until every key is ready (stacks, or PostgresClusters
// when clusters), printing progress.
func (r *round) awaitReady(ctx context.Context, what string, keys []string, clusters bool) error {
	return r.await(ctx, what, r.cfg.PhaseTimeout, func() (bool, string) {
		ready := r.track.countReady(keys, clusters)
		return ready == len(keys), fmt.Sprintf("%d of %d ready", ready, len(keys))
	})
}

// await polls done every 50 ms (the figures' resolution is the watch's, not
// this poll's), printing its state every 5 s, until it is done or timeout passes.
func (r *round) await(ctx context.Context, what string, timeout time.Duration, done func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	begin := time.Now()
	for {
		ok, state := done()
		if ok {
			return nil
		}
		if err := r.mgr.Exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.Canceled {
				return fmt.Errorf("%s: interrupted: %s", what, state)
			}
			return fmt.Errorf("%s: not done after %s: %s", what, timeout, state)
		case <-progress.C:
			r.say("[N=%d]   %s: %s (%s)", r.n, what, state, time.Since(begin).Round(time.Second))
		case <-poll.C:
		}
	}
}

func createObject(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil {
		return fmt.Errorf("create %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// parallel runs do(0..count-1) on createrCount workers, stopping at the first error.
func parallel(ctx context.Context, count int, do func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(createrCount, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// percentileMillis is the nearest-rank percentile p (0-100] of ds, in milliseconds.
func percentileMillis(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return round2(float64(sorted[rank-1]) / float64(time.Millisecond))
}

func seconds(d time.Duration) float64 { return round2(d.Seconds()) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
