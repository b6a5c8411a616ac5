package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/pgstack/pgstack/test/testenv"
)

const opmServe = "opm-serve"

// binaries are the paths of the programs the harness runs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler string
	olm, catalog, opm                             string
	kwok, kwokStages                              string
	pgo                                           string
}

// findBinaries locates the binaries `make cluster-bins` builds: through the
// environment the Makefile exports, else the newest matching directory under
// the repository's bin/ (for `go run ./test/cluster/cmd/cluster`).
func findBinaries(full bool) (binaries, error) {
	bin := filepath.Join(testenv.RepoRoot(), "bin")
	kube, err := assetDir(KubeAssetsEnv, filepath.Join(bin, "k8s", "*"))
	if err != nil {
		return binaries{}, err
	}
	b := binaries{etcd: filepath.Join(kube, "etcd"), apiserver: filepath.Join(kube, "kube-apiserver")}
	need := []string{b.etcd, b.apiserver}
	if full {
		olm, err := assetDir(OLMAssetsEnv, filepath.Join(bin, "olm", "*"))
		if err != nil {
			return binaries{}, err
		}
		kwok, err := assetDir(KwokAssetsEnv, filepath.Join(bin, "kwok", "*"))
		if err != nil {
			return binaries{}, err
		}
		b.controllerManager = filepath.Join(kube, "kube-controller-manager")
		b.scheduler = filepath.Join(kube, "kube-scheduler")
		b.olm, b.catalog, b.opm = filepath.Join(olm, "olm"), filepath.Join(olm, "catalog"), filepath.Join(olm, "opm")
		b.kwok, b.kwokStages = filepath.Join(kwok, "kwok"), filepath.Join(kwok, "stages.yaml")
		pgo, err := assetDir(PGOAssetsEnv, filepath.Join(bin, "pgo", "*"))
		if err != nil {
			return binaries{}, err
		}
		b.pgo = filepath.Join(pgo, "postgres-operator")
		need = append(need, b.controllerManager, b.scheduler, b.olm, b.catalog, b.opm, b.kwok, b.kwokStages, b.pgo)
	}
	for _, path := range need {
		if _, err := os.Stat(path); err != nil {
			return binaries{}, fmt.Errorf("local cluster: %s is missing; run `make cluster-bins` (it builds every binary from Go modules into bin/): %w", path, err)
		}
	}
	return b, nil
}

func assetDir(env, glob string) (string, error) {
	if dir := os.Getenv(env); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob(glob)
	if len(dirs) == 0 {
		return "", fmt.Errorf("local cluster: %s is not set and nothing matches %s; run `make cluster-bins`", env, glob)
	}
	sort.Slice(dirs, func(i, j int) bool { return modTime(dirs[i]) > modTime(dirs[j]) })
	return dirs[0], nil
}

func modTime(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.ModTime().UnixNano()
}

// dialable says whether something accepts TCP connections at addr.
func dialable(ctx context.Context, addr string) bool {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
