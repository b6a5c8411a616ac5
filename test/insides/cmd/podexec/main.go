// Command podexec plays what PGO v5.8.9's manager runs inside its pods
// through exec. kwok runs no containers: it runs an exec's command on the
// host, and the local cluster gives kwok a PATH holding only this program,
// installed under every name PGO execs (bash, patronictl, psql, pgbackrest).
// So nothing real on the host ever runs PGO's scripts. A switchover is
// played against the API server ($KUBECONFIG), as Patroni moves its leader
// key in the DCS.
//
// Each command shape PGO sends is played as the real program answers it,
// citing the PGO source that builds it; anything else exits 127 and is
// written to $PODEXEC_UNKNOWN, which fails the suite (test/cluster's
// StandInErrors). Every call is logged to $PODEXEC_LOG.
//
// kwok never closes a command's stdin at EOF, so podexec never reads it:
// what PGO sends there (SQL, Patroni's dynamic configuration) is not needed
// to answer.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pgstack/pgstack/test/insides"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	timeline := insides.Timeline(os.Getenv("PODEXEC_TIMELINE"))
	tl, err := timeline.Read()
	answer := insides.Play(name, args, tl)
	if primary, candidate, ok := insides.SwitchoverArgs(name, args); ok {
		answer = switchover(primary, candidate)
		// The new leader is promoted onto the next timeline.
		if answer.Promoted && err == nil {
			err = timeline.Advance(strings.Join(args, " "))
		}
	}
	if err != nil {
		answer = insides.Answer{Shape: answer.Shape, Stderr: err.Error() + "\n", Exit: 1, Unknown: true}
	}
	logCall(os.Getenv("PODEXEC_LOG"), name, args, answer)
	if answer.Unknown {
		logCall(os.Getenv("PODEXEC_UNKNOWN"), name, args, answer)
	}
	fmt.Fprint(os.Stdout, answer.Stdout)
	fmt.Fprint(os.Stderr, answer.Stderr)
	os.Exit(answer.Exit)
}

// switchover moves Patroni's leader through the API server, reached with
// $KUBECONFIG (the local cluster's).
func switchover(primary, candidate string) insides.Answer {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err == nil {
		cfg.WarningHandler = rest.NoWarnings{}
	}
	var cs *kubernetes.Clientset
	if err == nil {
		cs, err = kubernetes.NewForConfig(cfg)
	}
	if err != nil {
		return insides.Answer{Shape: insides.ShapePatroniSwitchover, Stderr: err.Error() + "\n", Exit: 1, Unknown: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return insides.Switchover(ctx, cs, primary, candidate)
}

func logCall(path, name string, args []string, answer insides.Answer) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	line := strings.Join(append([]string{name}, args...), " ")
	line = strings.ReplaceAll(line, "\n", `\n`)
	if len(line) > 400 {
		line = line[:400] + "…"
	}
	fmt.Fprintf(f, "%s exit=%d %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), answer.Exit, answer.Shape, line)
}
