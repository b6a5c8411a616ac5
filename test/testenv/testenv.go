// Package testenv starts the real kube-apiserver and etcd that every envtest
// suite runs against, with pgstack's, OLM's and PGO's CRDs installed.
//
// The binaries come from bin/ (built by `make test-bins` from Go modules) and
// are found through KUBEBUILDER_ASSETS, which the Makefile exports.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	olmcrds "github.com/operator-framework/api/crds"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pgstack/pgstack/internal/scheme"
)

// Environment variables that say where PGO's material is.
const (
	// PGOCRDsEnv overrides where PGO's CRDs are read from.
	PGOCRDsEnv = "PGO_CRDS_DIR"
	// PGODirEnv overrides where PGO's releases (v<version>/release) are read
	// from; by default ../shared/pgo beside the repository.
	PGODirEnv = "PGO_DIR"
	// PGOFallbackEnv, set to 1, lets a run without PGO's CRDs validate
	// against pgstack's own schema instead of failing.
	PGOFallbackEnv = "PGSTACK_PGO_FALLBACK"
)

// etcdMaxRequestBytes lets etcd store PGO's 1.4 MB PostgresCluster CRD (and
// InstallPlans that carry it); etcd's default of 1.5 MiB is too tight.
const etcdMaxRequestBytes = "8388608"

// pgoPostgresClusterCRDFile is the file name PGO ships its PostgresCluster CRD under.
const pgoPostgresClusterCRDFile = "postgres-operator.crunchydata.com_postgresclusters.yaml"

// PGOSchema says which PostgresCluster schema a test environment validates against.
type PGOSchema struct {
	// Real is true when PGO's own CRDs were installed.
	Real bool
	// Dir is the directory the CRDs were read from.
	Dir string
}

func (s PGOSchema) String() string {
	if s.Real {
		return fmt.Sprintf("PGO's real v5.8.9 CRDs from %s", s.Dir)
	}
	return fmt.Sprintf("pgstack's own PostgresCluster schema from %s (%s=1; PGO's CRDs not found)", s.Dir, PGOFallbackEnv)
}

// Env is a running API server with the CRDs installed.
type Env struct {
	Config    *rest.Config
	Client    client.Client
	Scheme    *k8sruntime.Scheme
	PGOSchema PGOSchema

	env *envtest.Environment
}

// RepoRoot is the directory holding pgstack's go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// PGODir is where PGO's material is read from in place: $PGO_DIR, else
// ../shared/pgo beside the repository.
func PGODir() string {
	if dir := os.Getenv(PGODirEnv); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "..", "shared", "pgo")
}

// FindPGOSchema locates PGO's CRDs in $PGO_CRDS_DIR, else in PGODir()'s
// v5.8.9/crds. Without them it fails, saying what is missing, unless the
// run opts into pgstack's own schema under test/crds/pgo-fallback with
// PGSTACK_PGO_FALLBACK=1: a suite must not pass quietly against our own
// reading of PGO.
func FindPGOSchema() (PGOSchema, error) {
	dir := os.Getenv(PGOCRDsEnv)
	if dir == "" {
		dir = filepath.Join(PGODir(), "v5.8.9", "crds")
	}
	_, err := os.Stat(filepath.Join(dir, pgoPostgresClusterCRDFile))
	if err == nil {
		return PGOSchema{Real: true, Dir: dir}, nil
	}
	if os.Getenv(PGOFallbackEnv) == "1" {
		return PGOSchema{Real: false, Dir: filepath.Join(RepoRoot(), "test", "crds", "pgo-fallback")}, nil
	}
	return PGOSchema{}, fmt.Errorf("PGO's CRDs are missing: %w; put PGO's material at ../shared/pgo beside the repository (or set %s or %s), or set %s=1 to validate against pgstack's own schema", err, PGOCRDsEnv, PGODirEnv, PGOFallbackEnv)
}

// NewScheme knows pgstack's, OLM's and Kubernetes' built-in types.
func NewScheme() *k8sruntime.Scheme { return scheme.New() }

// OLMCRDs are OLM v0's CRDs as operator-framework/api ships them.
func OLMCRDs() []*apiextensionsv1.CustomResourceDefinition {
	return []*apiextensionsv1.CustomResourceDefinition{
		olmcrds.CatalogSource(), olmcrds.ClusterServiceVersion(), olmcrds.InstallPlan(),
		olmcrds.OperatorGroup(), olmcrds.Operator(), olmcrds.Subscription(),
		olmcrds.OperatorCondition(), olmcrds.OLMConfig(),
	}
}

// Options change what Start installs.
type Options struct {
	// WithoutOLM leaves OLM's CRDs out, for suites that show pgstack waiting
	// for OLM to be installed (they install OLMCRDs themselves).
	WithoutOLM bool
}

// Start runs etcd and kube-apiserver and installs every CRD; Stop ends them.
func Start() (*Env, error) { return StartWith(Options{}) }

// StartWith is Start with options.
func StartWith(opts Options) (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the suites with `make test`, which builds kube-apiserver and etcd into bin/")
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("no kube-apiserver in KUBEBUILDER_ASSETS=%s: run `make test-bins`: %w", assets, err)
	}
	schema, err := FindPGOSchema()
	if err != nil {
		return nil, err
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
		CRDDirectoryPaths: []string{
			filepath.Join(RepoRoot(), "config", "crd", "bases"),
			schema.Dir,
		},
		ErrorIfCRDPathMissing: true,
	}
	if !opts.WithoutOLM {
		env.CRDs = OLMCRDs()
	}
	env.ControlPlane.Etcd = &envtest.Etcd{}
	env.ControlPlane.Etcd.Configure().Set("max-request-bytes", etcdMaxRequestBytes)
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest (kube-apiserver and etcd from %s): %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("create client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, PGOSchema: schema, env: env}, nil
}

// Stop ends the API server and etcd and removes their data.
func (e *Env) Stop() error {
	return e.env.Stop()
}

// RunTests is a suite's TestMain: it starts the API server, runs
// setup, then the tests, and stops the server. It returns the exit code.
func RunTests(m *testing.M, setup func(*Env) error) int {
	env, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stop:", err)
		}
	}()
	fmt.Println("testenv: PostgresCluster schema:", env.PGOSchema)
	if setup != nil {
		if err := setup(env); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: setup:", err)
			return 1
		}
	}
	return m.Run()
}
