package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/scheme"
)

// runPreviewUpgrade prints, for every stack, what the PGO upgrade waiting
// for approval would do to its cluster, as the manager previewed it in
// status.operator.pendingUpgrade: for a person deciding on a Manual plan.
// It only reads.
func runPreviewUpgrade(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("preview-upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	namespace := fs.String("n", "", "only stacks in this namespace (default: every namespace)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pgstack preview-upgrade [-kubeconfig FILE] [-n NAMESPACE]\n\nPrints which databases the PGO upgrade waiting for approval would restart, and which images change.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("preview-upgrade: unexpected arguments %q", fs.Args())
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("preview-upgrade: kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("preview-upgrade: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stacks := &v1alpha1.PostgresStackList{}
	if err := c.List(ctx, stacks, client.InNamespace(*namespace)); err != nil {
		return fmt.Errorf("preview-upgrade: list PostgresStacks: %w", err)
	}
	return upgradeTable(stdout, stacks.Items)
}

// upgradeTable writes one row per stack: its PGO, the pending version,
// whether its database restarts, the images that change and what blocks
// the upgrade; and a last line counting the restarts.
func upgradeTable(w io.Writer, stacks []v1alpha1.PostgresStack) error {
	sort.Slice(stacks, func(i, j int) bool {
		if stacks[i].Namespace != stacks[j].Namespace {
			return stacks[i].Namespace < stacks[j].Namespace
		}
		return stacks[i].Name < stacks[j].Name
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPGO\tPENDING\tPLAN\tRESTARTS\tIMAGES\tBLOCKED")
	pending, restarting := 0, 0
	for _, s := range stacks {
		op := s.Status.Operator
		row := []string{s.Namespace, s.Name, orDash(op.Version), "-", "-", "-", "-", "-"}
		if p := op.PendingUpgrade; p != nil {
			pending++
			restarts := "no"
			if p.ClusterRestarts {
				restarts = "yes"
				restarting++
			}
			var images []string
			for _, c := range p.Images {
				images = append(images, fmt.Sprintf("%s %s -> %s", c.Component, c.From, c.To))
			}
			row[3], row[4], row[5], row[6], row[7] = p.Version, p.InstallPlan, restarts, orDash(strings.Join(images, ", ")), orDash(p.Blocked)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d of %d stacks have an upgrade pending; approving it restarts %d of their databases.\n", pending, len(stacks), restarting)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
