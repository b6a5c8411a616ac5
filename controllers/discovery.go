package controllers

import (
	"context"
	"errors"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/internal/pgo"
)

var olmSubscriptionGK = schema.GroupKind{Group: operatorsv1alpha1.GroupName, Kind: operatorsv1alpha1.SubscriptionKind}

// The CRDs whose arrival lets a stalled stack go on.
var watchedCRDs = map[string]bool{
	"subscriptions.operators.coreos.com":          true,
	"installplans.operators.coreos.com":           true,
	"clusterserviceversions.operators.coreos.com": true,
	"operatorgroups.operators.coreos.com":         true,
	pgo.PostgresClusterCRD:                        true,
	pgo.PGUpgradeCRD:                              true,
}

// apiPending reports whether a CRD exists whose kind pgstack cannot read yet:
// discovery follows a CRD's Established condition by a moment, and the
// kind's cache then has to sync. No further CRD event comes to say either
// caught up, so the caller looks again soon (the cache's sync also wakes
// every stack; see dynamicWatch).
func (r *PostgresStackReconciler) apiPending(ctx context.Context, crd string) bool {
	crdMeta := &metav1.PartialObjectMetadata{}
	crdMeta.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	return r.Get(ctx, client.ObjectKey{Name: crd}, crdMeta) == nil
}

// errAPIPending is transient: the stack is retried with backoff until the
// CRD's API is served and its cache synced.
var errAPIPending = errors.New("a CRD exists whose API is not served or not synced yet; retrying")

func olmServed(mapper meta.RESTMapper) bool {
	_, err := mapper.RESTMapping(olmSubscriptionGK, operatorsv1alpha1.SchemeGroupVersion.Version)
	return err == nil
}

// pgoServed: PGO's PostgresCluster and PGUpgrade APIs are both served (PGO's
// CSV installs its CRDs together).
func pgoServed(mapper meta.RESTMapper) bool {
	for _, gvk := range []schema.GroupVersionKind{pgo.PostgresClusterGVK, pgo.PGUpgradeGVK} {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return false
		}
	}
	return true
}
