package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/scheme"
)

func runManager(args []string) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	var (
		metricsAddr     string
		probeAddr       string
		secureMetrics   bool
		leaderElect     bool
		leaseNS         string
		leaseDuration   time.Duration
		renewDeadline   time.Duration
		retryPeriod     time.Duration
		concurrency     int
		progress        time.Duration
		clusterProgress bool
		pprofAddr       string
	)
	fs.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to (:8443 for HTTPS, :8080 for HTTP, 0 to disable).")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probes bind to.")
	fs.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	fs.StringVar(&leaseNS, "leader-election-namespace", "", "Namespace of the leader election Lease; empty means the namespace the pod runs in (read from its ServiceAccount mount), which a manager run outside a cluster does not have.")
	// controller-runtime's own defaults; the reliability suite's failover
	// test passes shorter ones so that a takeover is seconds.
	fs.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second, "How long a follower waits after the leader's last renewal before it takes the Lease (whole seconds: the Lease stores seconds).")
	fs.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second, "How long the leader keeps retrying a failed renewal before it gives up leading (and exits).")
	fs.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second, "How often candidates try to acquire, and the leader to renew, the Lease.")
	fs.IntVar(&concurrency, "max-concurrent-reconciles", 16, "How many PostgresStacks are reconciled at once. A reconcile mostly waits on the API server: 16 applied 100 new stacks' PostgresClusters in 1.5 s where 4 took 3.3 s, with the same writes per stack (make bench, 2026-12-03 13:37 and 13:44 runs).")
	fs.DurationVar(&progress, "status-progress-interval", controllers.DefaultProgressInterval, "The least time between two status writes of a stack that only describe work in progress differently (OLM taking a CSV through its phases; PGO's steps with --status-cluster-progress); a condition turning, Ready, Stalled or a new generation is written at once. 0 writes every change at once.")
	fs.BoolVar(&clusterProgress, "status-cluster-progress", false, "Write PGO's steps toward a new cluster (instances starting, the primary, the stanza) to the stack's status as they happen, paced by --status-progress-interval. Off, a new stack's status says it awaits PGO until the cluster is ready, and the PostgresCluster's own status shows the steps: at a thousand stacks a write per step per stack is API load no reader acts on.")
	fs.StringVar(&pprofAddr, "pprof-bind-address", "", "Address Go's pprof endpoints (/debug/pprof/) bind to, for a heap or CPU profile of a running manager; empty (the default) serves none. Bind it to localhost: pprof has no authentication.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		// HTTP/2 is off: it is open to the HTTP/2 rapid reset and stream cancellation CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = metricsAuth
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme.New(),
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "pgstack.platform.pgstack.dev",
		LeaderElectionNamespace: leaseNS,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if concurrency < 1 {
		return fmt.Errorf("--max-concurrent-reconciles=%d: want at least 1", concurrency)
	}
	reconciler := controllers.NewReconciler(mgr)
	reconciler.MaxConcurrentReconciles = concurrency
	reconciler.ProgressInterval = progress
	reconciler.ShowClusterProgress = clusterProgress
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up PostgresStack controller: %w", err)
	}
	if err := controllers.NewRolloutReconciler(mgr, reconciler).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up PostgresRolloutPolicy controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}
