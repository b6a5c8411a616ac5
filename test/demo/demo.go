// Command demo shows pgstack doing its whole job on the full local cluster:
// real control plane, real OLM with a catalog serving the postgresql package,
// kwok nodes, PGO's own manager (run for the pod OLM makes), and pgstack's
// manager binary as its own process. It applies config/samples' hippo stack, shows progress until the
// stack is Ready, then prints what kubectl shows and what to try next.
//
//	go run ./test/demo -manager bin/manager      (what `make demo` runs)
//
// With DEMO_EXIT=1 it exits right after printing (non-zero, with the failing
// condition, when hippo is not Ready in time). Otherwise it runs until Ctrl-C,
// reading commands such as `publish 5.9.0` from standard input. Either way it
// stops every process it started and removes its temporary directory.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/testenv"
)

// Options shape one demo run.
type Options struct {
	// Manager is the pgstack manager binary to run.
	Manager string
	// Exit ends the demo once it has printed (DEMO_EXIT=1).
	Exit bool
	// ReadyTimeout bounds the wait for hippo to become Ready.
	ReadyTimeout time.Duration
	// Out receives everything the demo prints; In, when not nil, is read for commands.
	Out io.Writer
	In  io.Reader
}

// hippoSample is the user document's hippo, as the project ships it.
var hippoSample = filepath.Join(testenv.RepoRoot(), "config", "samples", "platform_v1alpha1_postgresstack_hippo.yaml")

const demoNamespace = "default"

func main() {
	manager := flag.String("manager", filepath.Join(testenv.RepoRoot(), "bin", "manager"), "the pgstack manager binary")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := Options{Manager: *manager, Exit: os.Getenv("DEMO_EXIT") == "1", ReadyTimeout: 5 * time.Minute, Out: os.Stdout, In: os.Stdin}
	if err := Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// Run is the whole demo; it returns once everything it started is stopped.
func Run(ctx context.Context, opts Options) (err error) {
	// The harness's watches log through controller-runtime; the demo shows progress itself.
	ctrllog.SetLogger(logr.Discard())
	out := opts.Out
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	begin := time.Now()

	say("==> starting the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes, OLM, opm serving the catalog;")
	say("    PGO's own manager runs for the pod OLM makes; only what runs inside PGO's pods stands in (test/insides)")
	lc, err := cluster.StartFull(ctx, cluster.Options{Logf: func(f string, a ...any) { say("    "+f, a...) }})
	if err != nil {
		return fmt.Errorf("start the local cluster: %w", err)
	}
	defer func() {
		say("==> stopping everything the demo started")
		if stopErr := lc.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	kubeconfig := filepath.Join(lc.Dir, "kubeconfig")
	if err := lc.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}

	say("==> starting the pgstack manager (%s)", opts.Manager)
	managerLog, err := os.Create(filepath.Join(lc.Dir, "logs", "pgstack-manager.log"))
	if err != nil {
		return fmt.Errorf("create manager log: %w", err)
	}
	defer managerLog.Close()
	mgr := exec.Command(opts.Manager, "manager", "--metrics-bind-address=0", "--health-probe-bind-address=0")
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	mgr.Stdout, mgr.Stderr = managerLog, managerLog
	mgr.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("start the manager: %w", err)
	}
	defer func() {
		_ = syscall.Kill(-mgr.Process.Pid, syscall.SIGTERM)
		_ = mgr.Wait()
	}()

	say("==> kubectl apply -f config/samples/%s", filepath.Base(hippoSample))
	if err := kubectl(out, kubeconfig, "apply", "-n", demoNamespace, "-f", hippoSample); err != nil {
		return err
	}
	stack := &platformv1alpha1.PostgresStack{}
	stack.Name, stack.Namespace = "hippo", demoNamespace
	if err := waitReady(ctx, lc.Client, stack, opts.ReadyTimeout, begin, say); err != nil {
		say("    manager log (last lines):\n%s", lc.LogTail("pgstack-manager", 15))
		return err
	}

	for _, args := range [][]string{
		{"get", "postgresstacks", "-A"},
		{"describe", "postgresstack", "hippo", "-n", demoNamespace},
		{"get", "subscription,installplan,csv", "-n", "operators"},
		{"get", "postgrescluster", "-n", demoNamespace},
		// What PGO's own manager made for hippo.
		{"get", "statefulset,service,secret,persistentvolumeclaim", "-n", demoNamespace, "-l", "postgres-operator.crunchydata.com/cluster=hippo"},
		{"get", "postgrescluster", "hippo", "-n", demoNamespace, "-o", "jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){\"\\n\"}{end}"},
	} {
		say("\n$ kubectl %s", strings.Join(args, " "))
		if err := kubectl(out, kubeconfig, args...); err != nil {
			return err
		}
	}
	say("\n==> hippo is Ready after %s.", time.Since(begin).Round(time.Second))
	say(`
What is real here: the Kubernetes control plane, OLM (resolution, InstallPlans,
CSV phases judged on a real Deployment), the catalog protocol (opm serve),
PGO's own manager (built from its v5.8.9 source, run with the environment and
ServiceAccount of the pod OLM made, writing every PostgresCluster status),
volumes from kube-controller-manager's host-path provisioner, and pgstack's
manager. What stands in: kwok nodes run no containers, so what runs inside
PGO's pods is played by test/insides (Patroni's leader records, the commands
PGO execs: psql, patronictl, pgBackRest's stanza-create); Jobs complete.

Point your own kubectl at this cluster while the demo runs:
  export KUBECONFIG=%s

Try next:
  kubectl apply -f config/samples/platform_v1alpha1_postgresstack_manual_approval.yaml
      a stack whose upgrades wait for a person (see UpgradeApproved)
  publish 5.9.0        (type it here) publish a new PGO version to the catalog;
      watch OLM plan it and pgstack approve or hold it per policy
  kubectl delete postgresstack hippo
      deletionPolicy Retain: the PostgresCluster stays (kubectl get postgrescluster)
`, kubeconfig)

	if opts.Exit {
		return nil
	}
	say("The demo keeps running; Ctrl-C stops it and removes everything.")
	return serveCommands(ctx, lc, opts.In, say)
}

// waitReady shows each change of the stack's conditions until Ready is True.
func waitReady(ctx context.Context, c client.Client, stack *platformv1alpha1.PostgresStack, timeout time.Duration, begin time.Time, say func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		got := &platformv1alpha1.PostgresStack{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(stack), got); err == nil {
			line := progressLine(got)
			if line != last {
				say("    [%5.1fs] %s", time.Since(begin).Seconds(), line)
				last = line
			}
			if ready := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionReady); ready != nil &&
				ready.Status == metav1.ConditionTrue && got.Status.ObservedGeneration == got.Generation {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hippo is not Ready after %s: %s", timeout, last)
		case <-ticker.C:
		}
	}
}

// progressLine says which phase the stack is in and which condition waits.
func progressLine(s *platformv1alpha1.PostgresStack) string {
	ready := meta.FindStatusCondition(s.Status.Conditions, platformv1alpha1.ConditionReady)
	if ready == nil {
		return "waiting for pgstack to report"
	}
	if ready.Status == metav1.ConditionTrue {
		return "Ready=True: " + ready.Message
	}
	phase := "operator"
	for _, t := range []string{platformv1alpha1.ConditionOperatorInstalled, platformv1alpha1.ConditionClusterReady} {
		if c := meta.FindStatusCondition(s.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
			return fmt.Sprintf("%s phase: %s=%s (%s) %s", phase, t, c.Status, c.Reason, c.Message)
		}
		phase = "cluster"
	}
	return fmt.Sprintf("Ready=%s (%s) %s", ready.Status, ready.Reason, ready.Message)
}

// serveCommands reads `publish VERSION` lines until ctx ends.
func serveCommands(ctx context.Context, lc *cluster.Cluster, in io.Reader, say func(string, ...any)) error {
	lines := make(chan string)
	if in != nil {
		go func() {
			scanner := bufio.NewScanner(in)
			for scanner.Scan() {
				lines <- strings.TrimSpace(scanner.Text())
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case line := <-lines:
			fields := strings.Fields(line)
			if len(fields) == 2 && fields[0] == "publish" {
				if err := lc.PublishVersion(ctx, "postgresql", fields[1]); err != nil {
					say("publish: %v", err)
					continue
				}
				say("published postgresoperator.v%s to the catalog; OLM plans the upgrade, pgstack judges it", fields[1])
			} else if line != "" {
				say("commands: publish VERSION (e.g. publish 5.9.0); Ctrl-C to stop")
			}
		}
	}
}

func kubectl(out io.Writer, kubeconfig string, args ...string) error {
	cmd := exec.Command("kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("kubectl %s: exit %d", strings.Join(args, " "), exitErr.ExitCode())
		}
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
