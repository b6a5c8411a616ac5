package controllers_test

// How the manager takes PGO's word: the images the installed PGO ships, the
// Events PGO records when it refuses a spec, and a judgement made on what the
// API server holds after an apply.

import (
	"context"
	"fmt"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// PGO 5.8.9 ships no PostgreSQL 14 image: the stack stalls naming what it
// ships, and nothing is applied until the stack names an image or the
// Subscription supplies one.
func TestNoImageForTheVersionStallsAndAppliesNothing(t *testing.T) {
	ctx := context.Background()
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 14 }))
	sub := o.installFirst(pkg, csv5_8_9)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonNoImageForVersion,
		"PGO 5.8.9 ships PostgreSQL images for 15, 16, 17, 18", "set spec.postgres.image for 14")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hippo"}, pgo.NewPostgresCluster()); !apierrors.IsNotFound(err) {
		t.Fatalf("a PostgresCluster PGO has no image for was applied (get: %v)", err)
	}

	// OLM merges the Subscription's config.env into PGO's container.
	setSubscriptionEnv(t, sub, corev1.EnvVar{Name: "RELATED_IMAGE_POSTGRES_14", Value: "mirror.example.com/crunchy-postgres:ubi9-14.19-2633"})
	getPostgresCluster(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
}

// PGO 5.8.9 as released leaves its TablespaceVolumes feature gate off and
// would ignore tablespaces without a word: the stack stalls saying how to
// turn it on, and nothing is applied until PGO's environment does.
func TestTablespacesWithoutPGOsFeatureGateStallAndApplyNothing(t *testing.T) {
	ctx := context.Background()
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Instances = []platformv1alpha1.InstanceSet{{Name: "instance1",
			Tablespaces: []platformv1alpha1.Tablespace{{Name: "archive", Volume: platformv1alpha1.Volume{Storage: "5Gi"}}}}}
	}))
	sub := o.installFirst(pkg, csv5_8_9)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonTablespacesNeedFeatureGate,
		"PGO 5.8.9 ignores tablespaces unless its TablespaceVolumes feature gate is on", "PGO_FEATURE_GATES is unset")
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hippo"}, pgo.NewPostgresCluster()); !apierrors.IsNotFound(err) {
		t.Fatalf("a PostgresCluster whose tablespaces PGO would ignore was applied (get: %v)", err)
	}

	setSubscriptionEnv(t, sub, corev1.EnvVar{Name: pgo.EnvFeatureGates, Value: "TablespaceVolumes=true"})
	pc := getPostgresCluster(t, ns, "hippo")
	if sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances"); len(sets) != 1 || sets[0].(map[string]any)["tablespaceVolumes"] == nil {
		t.Errorf("spec.instances = %v, want instance1 with its tablespaceVolumes", sets)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
}

// setSubscriptionEnv sets the Subscription's spec.config.env, which OLM
// merges into PGO's container over the CSV's env.
func setSubscriptionEnv(t *testing.T, sub *operatorsv1alpha1.Subscription, env ...corev1.EnvVar) {
	t.Helper()
	eventually(t, fmt.Sprintf("Subscription config.env set to %v", env), func() (bool, error) {
		got := &operatorsv1alpha1.Subscription{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(sub), got); err != nil {
			return false, err
		}
		got.Spec.Config = &operatorsv1alpha1.SubscriptionConfig{Env: env}
		err := k8s.Update(context.Background(), got)
		return err == nil, ignoreConflict(err)
	})
}

func TestTheStacksOwnImageNeedsNoDefault(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Version = 13
		s.Spec.Postgres.Image = "registry.example.com/crunchy-postgres:ubi8-13.21-2520"
	}))
	o.installFirst(pkg, csv5_8_9)
	pc := getPostgresCluster(t, ns, "hippo")
	if image, _, _ := unstructured.NestedString(pc.Object, "spec", "image"); image != stack.Spec.Postgres.Image {
		t.Errorf("spec.image = %q, want the stack's", image)
	}
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
}

// PGO refuses a spec with a Warning Event and never observes its
// generation. The manager reads PGO's Events (it does not watch them) and
// stalls with PGO's reason and message; once PGO observes the generation the
// refusal is moot.
func TestPGOsRefusalStallsTheStackWithPGOsReason(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	pc := getPostgresCluster(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, pgo.ReasonNotObserved)

	// A warning of another kind, and one by someone other than PGO, change nothing.
	pgoRecords(t, pc, "someone-else", platformv1alpha1.ReasonMissingRequiredImage, "not PGO's word")
	pgoRecords(t, pc, pgo.EventSource, "EndOfLifePostgresVersion", "The last minor version of Postgres 16 has been released.")
	pgoRecords(t, pc, pgo.EventSource, platformv1alpha1.ReasonMissingRequiredImage, "missing image(s): [crunchy-pgbackrest]")
	c := waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMissingRequiredImage,
		"missing image(s): [crunchy-pgbackrest]", "generation 1")
	if containsAll(c.Message, "not PGO's word") {
		t.Errorf("an Event not recorded by PGO was taken as PGO's: %q", c.Message)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, platformv1alpha1.ReasonMissingRequiredImage)

	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
}

// spec.shutdown is a steady state: Ready (ShutDown) once PGO has stopped
// every instance. The reconcile that applies the change judges what the API
// server returned, whose generation PGO has not observed, not the object it
// sent (which has no status, and so would read as stopped at once).
func TestAShutDownClusterIsReadyOncePGOHasStoppedIt(t *testing.T) {
	_, ns, stack := installedHippo(t)
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Overrides = &apiextensionsv1.JSON{Raw: []byte(`{"shutdown": true}`)}
	})
	generation := getStack(t, stack).Generation
	waitCondition(t, stack, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, pgo.ReasonNotObserved)
	pgoReportsShutDown(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady, "shut down")
	waitCondition(t, stack, platformv1alpha1.ConditionClusterReady, metav1.ConditionTrue, pgo.ReasonShutDown)

	var judged []string
	for _, s := range writtenStatuses(stack) {
		if s.ObservedGeneration == generation {
			judged = append(judged, meta.FindStatusCondition(s.Conditions, platformv1alpha1.ConditionClusterReady).Reason)
		}
	}
	if len(judged) < 2 || judged[0] != pgo.ReasonNotObserved {
		t.Errorf("ClusterReady reasons written for generation %d: %v; want %s first, before PGO reported anything", generation, judged, pgo.ReasonNotObserved)
	}
}

// pgoRecords records a Warning Event on the PostgresCluster as PGO's
// recorder does (core/v1, involvedObject, source component).
func pgoRecords(t *testing.T, pc *unstructured.Unstructured, source, reason, message string) {
	t.Helper()
	now := metav1.Now()
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: pc.GetNamespace(), Name: fmt.Sprintf("%s.%x", pc.GetName(), time.Now().UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: pgo.PostgresClusterGVK.Kind, APIVersion: pgo.PostgresClusterGVK.GroupVersion().String(),
			Namespace: pc.GetNamespace(), Name: pc.GetName(), UID: pc.GetUID(), ResourceVersion: pc.GetResourceVersion()},
		Type: corev1.EventTypeWarning, Reason: reason, Message: message, Source: corev1.EventSource{Component: source},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	must(t, k8s.Create(context.Background(), e))
}

// pgoReportsShutDown writes the status PGO writes once spec.shutdown has
// stopped every instance: the sets remain, their counts omitted.
func pgoReportsShutDown(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "PGO shut-down status on "+ns+"/"+name, func() (bool, error) {
		pc := pgo.NewPostgresCluster()
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pc); err != nil {
			return false, err
		}
		var instances []any
		sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
		for _, s := range sets {
			instances = append(instances, map[string]any{"name": s.(map[string]any)["name"]})
		}
		must(t, unstructured.SetNestedField(pc.Object, pc.GetGeneration(), "status", "observedGeneration"))
		must(t, unstructured.SetNestedSlice(pc.Object, instances, "status", "instances"))
		err := k8s.Status().Update(context.Background(), pc)
		return err == nil, ignoreConflict(err)
	})
}
