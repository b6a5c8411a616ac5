// Command cluster runs pgstack's full local cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok nodes, OLM and a catalog
// serving PGO's package) for the demo and the benchmark.
//
//	go run ./test/cluster/cmd/cluster up [-kubeconfig bin/cluster/kubeconfig]
//	go run ./test/cluster/cmd/cluster down
//
// up runs in the foreground until SIGINT/SIGTERM (or `down`), then stops
// every process it started and removes its temporary directory. It writes
// the kubeconfig only once the cluster is ready, so a script can wait for
// the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/testenv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down [flags]")
		os.Exit(2)
	}
	state := filepath.Join(testenv.RepoRoot(), "bin", "cluster")
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", filepath.Join(state, "kubeconfig"), "where up writes the kubeconfig once the cluster is ready")
	nodes := fs.Int("nodes", 3, "kwok nodes")
	_ = fs.Parse(os.Args[2:])
	pidFile := filepath.Join(state, "up.pid")

	var err error
	switch os.Args[1] {
	case "up":
		err = up(*kubeconfig, pidFile, *nodes)
	case "down":
		err = down(pidFile)
	default:
		err = fmt.Errorf("unknown command %q: want up or down", os.Args[1])
	}
	if err != nil {
		log.Fatalf("cluster %s: %v", os.Args[1], err)
	}
}

func up(kubeconfig, pidFile string, nodes int) error {
	if err := os.MkdirAll(filepath.Dir(pidFile), 0o755); err != nil {
		return err
	}
	if data, err := os.ReadFile(pidFile); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 && syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("a cluster is already up (pid %d); run `down` first", pid)
		}
	}
	// Catch signals before starting anything, so an interrupt during the
	// start still stops what was started.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	_ = os.Remove(kubeconfig)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidFile)

	c, err := cluster.StartFull(ctx, cluster.Options{Nodes: nodes, Logf: log.Printf})
	if err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(kubeconfig)
		if err := c.Stop(); err != nil {
			log.Print(err)
		}
		log.Print("cluster: stopped")
	}()
	if err := c.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	log.Printf("cluster: ready; export KUBECONFIG=%s (PostgresCluster schema: %s)", kubeconfig, c.PGOSchema)
	<-ctx.Done()
	return nil
}

func down(pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		log.Print("cluster: not running")
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still runs a minute after SIGTERM", pid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Print("cluster: down")
	return nil
}
