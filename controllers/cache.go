package controllers

import (
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// CacheOptions are the manager's cache options: managed fields are dropped
// from everything cached, and of StatefulSets only PGO's instance sets are
// cached, with what the rollout reads of them.
func CacheOptions() cache.Options {
	instance, err := labels.NewRequirement(labelPGOInstance, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.StatefulSet{}: {Label: labels.NewSelector().Add(*instance), Transform: stripStatefulSet},
			// Of pods, only the metadata of each cluster's leader: one pod
			// per cluster, whatever the cluster's size.
			primaryPods(): {Label: labels.SelectorFromSet(labels.Set{labelPGORole: rolePatroniLeader}), Transform: stripLeaderPod},
			// Of Events, only the Warnings on PostgresClusters: how PGO says
			// it refuses a spec it has not observed (pgo.Judge). Watched, so
			// a refusal wakes its stack without polling the API server.
			&corev1.Event{}: {Field: pgoWarnings()},
		},
	}
}

// pgoWarnings selects the Warning Events recorded on PostgresClusters.
func pgoWarnings() fields.Selector {
	return fields.SelectorFromSet(fields.Set{"type": corev1.EventTypeWarning, "involvedObject.kind": pgo.PostgresClusterGVK.Kind})
}

// primaryPods is the metadata-only kind the primaries are cached as.
func primaryPods() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
}

// stripLeaderPod keeps a leader pod's identity and the labels pgstack
// reads (its cluster, instance and role); Patroni's status annotation,
// rewritten at every move of the WAL position, and the rest go.
func stripLeaderPod(obj any) (any, error) {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	kept := map[string]string{}
	for _, k := range []string{labelPGOCluster, labelPGOInstance, labelPGORole} {
		if v, ok := p.Labels[k]; ok {
			kept[k] = v
		}
	}
	p.ObjectMeta = metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		DeletionTimestamp: p.DeletionTimestamp, Labels: kept}
	return p, nil
}

// stripStatefulSet keeps an instance StatefulSet's identity, labels,
// generation, replicas, its containers' names and images, pgstack's own
// annotations on its pod template (the restart token) and its status.
func stripStatefulSet(obj any) (any, error) {
	s, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return obj, nil
	}
	kept := &appsv1.StatefulSet{
		TypeMeta: s.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
			Generation: s.Generation, Labels: s.Labels},
		Status: s.Status,
	}
	kept.Spec.Replicas = s.Spec.Replicas
	for k, v := range s.Spec.Template.Annotations {
		if strings.HasPrefix(k, platformv1alpha1.GroupVersion.Group+"/") {
			if kept.Spec.Template.Annotations == nil {
				kept.Spec.Template.Annotations = map[string]string{}
			}
			kept.Spec.Template.Annotations[k] = v
		}
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		kept.Spec.Template.Spec.Containers = append(kept.Spec.Template.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	return kept, nil
}

// olmCacheOptions keep memory flat as namespaces grow: copied CSVs (one per
// namespace under an AllNamespaces OperatorGroup) never enter the cache, and
// InstallPlans are cached without the manifests they carry (PGO's CRD alone
// is 1.4 MB). OLM's kinds live in a cache of their own because a label
// selector per kind needs the kind served when the cache is made, and OLM
// may be installed after pgstack.
func olmCacheOptions(mgr ctrl.Manager) cache.Options {
	notCopied, err := labels.NewRequirement(operatorsv1alpha1.CopiedLabelKey, selection.DoesNotExist, nil)
	if err != nil {
		panic(err)
	}
	return cache.Options{
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&operatorsv1alpha1.ClusterServiceVersion{}: {
				Label:     labels.NewSelector().Add(*notCopied),
				Transform: stripCSV,
			},
			&operatorsv1alpha1.InstallPlan{}: {Transform: stripInstallPlan},
		},
	}
}

// stripInstallPlan keeps what approval needs: spec, phase, conditions.
func stripInstallPlan(obj any) (any, error) {
	if ip, ok := obj.(*operatorsv1alpha1.InstallPlan); ok {
		ip.ManagedFields = nil
		ip.Status.Plan = nil
		ip.Status.BundleLookups = nil
		ip.Status.AttenuatedServiceAccountRef = nil
	}
	return obj, nil
}

// stripCSV keeps a CSV's identity, its status and its Deployments'
// containers' names and env (PGO's RELATED_IMAGE_* defaults, which the image
// check reads); the rest of its spec (permissions, descriptions, icons,
// pod templates) is not read.
func stripCSV(obj any) (any, error) {
	if csv, ok := obj.(*operatorsv1alpha1.ClusterServiceVersion); ok {
		csv.ManagedFields = nil
		var deployments []operatorsv1alpha1.StrategyDeploymentSpec
		for _, d := range csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
			kept := operatorsv1alpha1.StrategyDeploymentSpec{Name: d.Name}
			for _, c := range d.Spec.Template.Spec.Containers {
				kept.Spec.Template.Spec.Containers = append(kept.Spec.Template.Spec.Containers,
					corev1.Container{Name: c.Name, Env: c.Env, EnvFrom: c.EnvFrom})
			}
			deployments = append(deployments, kept)
		}
		csv.Spec = operatorsv1alpha1.ClusterServiceVersionSpec{Version: csv.Spec.Version, Replaces: csv.Spec.Replaces,
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{StrategyName: csv.Spec.InstallStrategy.StrategyName,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{DeploymentSpecs: deployments}}}
		csv.Annotations = nil
	}
	return obj, nil
}

var _ toolscache.TransformFunc = stripInstallPlan

// keepLastSpecWrite keeps, of a PostgresCluster's managed fields, only the
// newest write outside its status, without its field set: PGO's Events
// older than that speak of an older spec (pgoEvents, lastWritten).
func keepLastSpecWrite(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	var newest []metav1.ManagedFieldsEntry
	for _, f := range o.GetManagedFields() {
		if f.Subresource == "" && f.Time != nil && (newest == nil || f.Time.After(newest[0].Time.Time)) {
			f.FieldsV1 = nil
			newest = []metav1.ManagedFieldsEntry{f}
		}
	}
	o.SetManagedFields(newest)
	return obj, nil
}

// pgoCacheOptions cache only the PostgresClusters and PGUpgrades pgstack
// manages: a cluster with many of its own costs the manager no memory.
func pgoCacheOptions(mgr ctrl.Manager) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{ManagedLabel: ManagedValue})
	return cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			pgo.NewPostgresCluster(): {Label: managed, Transform: keepLastSpecWrite},
			pgo.NewPGUpgrade():       {Label: managed},
		},
	}
}
