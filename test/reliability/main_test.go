// Package reliability is issue 8's suite: pgstack's manager, run as its own
// process on the full local cluster with real OLM, is SIGKILLed at random
// points of every flow, the API server and OLM's operators are restarted
// under it, other writers fight over its objects, and bad input is thrown at
// it. Throughout, invariants are checked: one Subscription per package, one
// PostgresCluster per stack, no InstallPlan approved outside policy, no
// PostgresCluster of a Retain stack ever deleted.
//
// The random points come from one seeded generator; the seed is printed and
// RELIABILITY_SEED replays it.
package reliability

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/ledger"
	"github.com/pgstack/pgstack/test/managerproc"
)

// SeedEnv replays a run's random points.
const SeedEnv = "RELIABILITY_SEED"

// A step of OLM's (resolve, install, upgrade) takes seconds on the local
// cluster, longer right after a restart; this bounds each wait.
const stepTimeout = 2 * time.Minute

var (
	lc        *cluster.Cluster
	k8s       client.Client
	approvals *ledger.Ledger
	manager   *managerproc.Process
	waits     expect.Waiter
	guard     *invariants
	random    *randomPoints
	counts    tally
	// managerBinary is the manager the suite built, for tests that run
	// managers of their own (TestLeaderFailover).
	managerBinary string
)

// tally counts what the suite did, for the note.
type tally struct {
	mu                sync.Mutex
	killPoints        int
	apiServerRestarts int
	olmRestarts       int
	clusterBadInputs  int
	conflictingWrites int
	leaderKills       int
}

func (c *tally) add(field *int, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*field += n
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	restarts := 0
	if manager != nil {
		restarts = manager.Starts() - 1
	}
	return fmt.Sprintf("kill points (SIGKILL of the manager): %d; manager restarts: %d; kube-apiserver restarts: %d; OLM operator restarts: %d; "+
		"cluster-level bad inputs: %d; conflicting writes: %d; leader failovers (SIGKILL of the leading manager of two): %d",
		c.killPoints, restarts, c.apiServerRestarts, c.olmRestarts, c.clusterBadInputs, c.conflictingWrites, c.leaderKills)
}

// logCounts reports the counts so far in the test's own output.
func logCounts(t *testing.T) { t.Logf("so far: %s", &counts) }

// randomPoints hands out the random delays; one generator, so one seed
// replays a whole run's schedule.
type randomPoints struct {
	mu   sync.Mutex
	seed int64
	rng  *rand.Rand
}

// delay is a random point in [0, max).
func (r *randomPoints) delay(max time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.rng.Int63n(int64(max)))
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seed := time.Now().UnixNano()
	if s := os.Getenv(SeedEnv); s != "" {
		parsed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", SeedEnv, s, err)
			return 1
		}
		seed = parsed
	}
	// The ledger and the invariants log through
	// controller-runtime; the suite reports what matters itself.
	ctrllog.SetLogger(logr.Discard())
	random = &randomPoints{seed: seed, rng: rand.New(rand.NewSource(seed))}
	fmt.Printf("reliability: seed %d (replay with %s=%d)\n", seed, SeedEnv, seed)

	binDir, err := os.MkdirTemp("", "pgstack-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	managerBinary, err = managerproc.Build(binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// The catalog starts at 5.8.8; the flows publish newer versions as a
	// catalog update would.
	pgoPackage, err := catalog.PGO("5.8.7", "5.8.8")
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		return 1
	}
	lc, err = cluster.StartFull(ctx, cluster.Options{Packages: []catalog.Package{pgoPackage},
		Logf: func(format string, args ...any) { fmt.Printf(format+"\n", args...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	defer func() { _ = lc.Stop() }()
	lc.StopOnSignal()
	k8s = lc.Client
	waits = expect.Waiter{Client: k8s, Bound: stepTimeout, Explain: func() string {
		return "manager: " + lc.LogTail("pgstack-manager", 8) + "\nolm: " + lc.LogTail("olm", 4) + "\ncatalog: " + lc.LogTail("catalog", 4)
	}}
	if approvals, err = ledger.Start(ctx, lc.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	guard = watchInvariants(ctx, k8s)

	manager, err = managerproc.Start(managerproc.Options{Binary: managerBinary, Kubeconfig: lc.Kubeconfig,
		LogPath: filepath.Join(lc.Dir, "logs", "pgstack-manager.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer manager.Stop()
	if err := manager.WaitServing(ctx, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	begin := time.Now()
	code := m.Run()
	if err := guard.err(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: invariant broken:", err)
		code = 1
	}
	if lc.ReportStandInErrors(os.Stderr) {
		code = 1
	}
	fmt.Printf("reliability: %s; scenarios took %s; seed %d\n", &counts, time.Since(begin).Round(time.Second), seed)
	return code
}
