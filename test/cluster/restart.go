package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"k8s.io/client-go/kubernetes"
)

// restartTimeout bounds how long a restarted process may take to be ready
// again (kube-apiserver re-reads every CRD and rebuilds its caches).
const restartTimeout = 2 * time.Minute

// RestartAPIServer stops kube-apiserver and starts it again with the same
// arguments on the same port, and returns once it answers /readyz again.
// Clients keep their configuration: the address and certificates are unchanged.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	return c.RestartProcess(ctx, "kube-apiserver")
}

// RestartProcess stops the named process the harness started (such as
// "kube-apiserver", "olm", "catalog", "kube-controller-manager") and starts
// it again with the same binary, arguments and environment, appending to its
// log. It waits for readiness where the process has a signal for it
// (kube-apiserver's /readyz, etcd's /health, opm serve's port); the others
// are back once they run.
func (c *Cluster) RestartProcess(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	c.mu.Lock()
	index := -1
	for i, p := range c.procs {
		if p.name == name && p.exited() == nil && (name != opmServe || p == c.opm) {
			index = i
		}
	}
	if index < 0 {
		c.mu.Unlock()
		return fmt.Errorf("restart %s: no running process of that name", name)
	}
	old := c.procs[index]
	c.mu.Unlock()

	c.opts.Logf("cluster: restarting %s", name)
	old.stop(stopGrace)
	p, err := rerunProcess(old)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[index] = p
	if name == opmServe {
		c.opm = p
	}
	c.mu.Unlock()
	return c.waitRestarted(ctx, p)
}

// rerunProcess starts old's command again, appending to the same log, so one
// file tells the process's whole story across restarts.
func rerunProcess(old *process) (*process, error) {
	logFile, err := os.OpenFile(old.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("restart %s: open log: %w", old.name, err)
	}
	fmt.Fprintf(logFile, "\n==== restarted by the harness at %s ====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(old.cmd.Path, old.cmd.Args[1:]...)
	cmd.Env = old.cmd.Env
	return launch(old.name, cmd, old.log, logFile)
}

func (c *Cluster) waitRestarted(ctx context.Context, p *process) error {
	watched := []*process{p}
	switch p.name {
	case "kube-apiserver":
		clientset, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			return fmt.Errorf("kube-apiserver client: %w", err)
		}
		return waitFor(ctx, "restarted kube-apiserver /readyz", 200*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
			body, err := clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && string(body) == "ok", err
		})
	case opmServe:
		return waitFor(ctx, "restarted opm serve on "+c.CatalogAddress, 100*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
			return dialable(ctx, c.CatalogAddress), nil
		})
	case "etcd":
		return waitFor(ctx, "restarted etcd", 100*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
			return dialable(ctx, c.etcdURL[len("http://"):]), nil
		})
	default:
		return p.exited()
	}
}
