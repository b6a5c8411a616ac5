// Command standin runs the pgo stand-in (see package standin) against a
// cluster, e.g. the local cluster of `go run ./test/cluster/cmd/cluster up`:
//
//	go run ./test/standin/cmd/standin -kubeconfig bin/cluster/kubeconfig -ready-delay 2s
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/pgstack/pgstack/test/standin"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (default: $KUBECONFIG)")
	namespace := flag.String("operator-namespace", "operators", "namespace of PGO's CSV")
	delay := flag.Duration("ready-delay", 0, "how long instance sets take to become ready")
	flag.Parse()

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if *kubeconfig != "" {
		rules.ExplicitPath = *kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		log.Fatalf("pgo stand-in: kubeconfig: %v", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := standin.Start(ctx, cfg, standin.Options{OperatorNamespace: *namespace, ReadyDelay: *delay}); err != nil {
		log.Fatal(err)
	}
	log.Print("pgo stand-in: running")
	<-ctx.Done()
}
