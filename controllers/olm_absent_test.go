package controllers_test

import (
	"context"
	"sync"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/testenv"
)

// On a cluster without OLM the stack stalls with a message saying so; once
// OLM's CRDs are installed, it carries on without a restart or an edit.
func TestOLMAbsentStallsThenRecoversWhenInstalled(t *testing.T) {
	bare, err := testenv.StartWith(testenv.Options{WithoutOLM: true})
	must(t, err)
	t.Cleanup(func() { _ = bare.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	must(t, startManager(ctx, bare, &wg))

	// The suite's helpers read through the package's client; point it at this server for the test.
	savedClient, savedWaits := k8s, waits
	k8s, waits.Client = bare.Client, bare.Client
	t.Cleanup(func() { k8s, waits = savedClient, savedWaits })

	stack := createStack(t, newStack("default", "hippo", "operators", nil))
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonOLMNotInstalled, "OLM is not installed")
	waitEvent(t, stack, platformv1alpha1.ReasonOLMNotInstalled)

	for _, crd := range testenv.OLMCRDs() {
		must(t, bare.Client.Create(ctx, crd))
	}
	eventually(t, "OperatorHub's catalog created", func() (bool, error) {
		err := createCatalog(bare.Client)
		return err == nil, nil // the CatalogSource API is served a moment after its CRD
	})
	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, platformv1alpha1.ReasonAwaitingInstallPlan)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
	subs := &operatorsv1alpha1.SubscriptionList{}
	must(t, bare.Client.List(ctx, subs, client.InNamespace("operators")))
	if len(subs.Items) != 1 || subs.Items[0].Spec.Package != "postgresql" {
		t.Errorf("want one postgresql Subscription once OLM is there, got %d", len(subs.Items))
	}
}
