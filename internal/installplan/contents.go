// Package installplan reads what an OLM InstallPlan would install for one
// ClusterServiceVersion: the CSV and the CRDs among its steps, before anyone
// approves it.
//
// A step carries its object in one of two ways (OLM v0.46.0
// pkg/controller/operators/catalog/manifests.go): inline, when the catalog
// serves the bundle's objects (file-based catalogs with olm.bundle.object
// properties, such as pgstack's local one); or as a reference to the
// ConfigMap OLM unpacked a bundle image into (production catalogs), whose
// data holds one object per key, gzipped and base64-encoded under
// binaryData when annotated olm.contentEncoding: gzip+base64
// (operator-registry v1.73.0 pkg/configmap).
package installplan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Step kinds this package reads.
const (
	KindCSV = operatorsv1alpha1.ClusterServiceVersionKind
	KindCRD = "CustomResourceDefinition"
)

// The ConfigMap annotation and value that say its binaryData is gzipped.
const (
	encodingAnnotation = "olm.contentEncoding"
	encodingGzip       = "gzip+base64"
)

// Contents is what a plan installs for one CSV. Its CRDs are decoded on
// request: PGO's PostgresCluster CRD alone is 1.4 MB, and a first install
// has no served CRD to compare them with.
type Contents struct {
	CSV  *operatorsv1alpha1.ClusterServiceVersion
	crds map[string][]byte
	plan string
}

// CRDNames are the names of the CRDs the plan installs, sorted.
func (c Contents) CRDNames() []string {
	names := make([]string, 0, len(c.crds))
	for name := range c.crds {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// CRD decodes the named CRD of the plan.
func (c Contents) CRD(name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	manifest, ok := c.crds[name]
	if !ok {
		return nil, fmt.Errorf("install plan %s has no CRD %s", c.plan, name)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := decode(manifest, crd); err != nil {
		return nil, fmt.Errorf("install plan %s: CRD %s: %w", c.plan, name, err)
	}
	return crd, nil
}

// GetConfigMap reads the ConfigMap a step refers to.
type GetConfigMap func(namespace, name string) (*corev1.ConfigMap, error)

// bundleRef is a step's manifest when it points at an unpacked bundle (the
// fields OLM's UnpackedBundleReference writes that this package needs).
type bundleRef struct {
	Kind                   string `json:"kind"`
	Name                   string `json:"name"`
	Namespace              string `json:"namespace"`
	CatalogSourceName      string `json:"catalogSourceName"`
	CatalogSourceNamespace string `json:"catalogSourceNamespace"`
}

// refOf reads a manifest as a bundle reference, as OLM's refForStep does.
func refOf(manifest string) (bundleRef, bool) {
	var ref bundleRef
	if err := json.Unmarshal([]byte(manifest), &ref); err != nil {
		return ref, false
	}
	ok := ref.Kind == "ConfigMap" && ref.Name != "" && ref.Namespace != "" && ref.CatalogSourceName != "" && ref.CatalogSourceNamespace != ""
	return ref, ok
}

// Read returns the CSV named csvName and the CRDs the plan's steps resolve
// for it. get is called at most once per referenced ConfigMap.
func Read(plan *operatorsv1alpha1.InstallPlan, csvName string, get GetConfigMap) (Contents, error) {
	out := Contents{crds: map[string][]byte{}, plan: plan.Name}
	bundles := map[bundleRef]map[string][]byte{}
	for _, step := range plan.Status.Plan {
		if step == nil || step.Resolving != csvName {
			continue
		}
		kind := step.Resource.Kind
		if kind != KindCSV && kind != KindCRD {
			continue
		}
		manifest := []byte(step.Resource.Manifest)
		if ref, ok := refOf(step.Resource.Manifest); ok {
			objects, seen := bundles[ref]
			if !seen {
				cm, err := get(ref.Namespace, ref.Name)
				if err != nil {
					return Contents{}, fmt.Errorf("read unpacked bundle ConfigMap %s/%s for %s: %w", ref.Namespace, ref.Name, csvName, err)
				}
				if objects, err = unpacked(cm); err != nil {
					return Contents{}, fmt.Errorf("unpacked bundle ConfigMap %s/%s: %w", ref.Namespace, ref.Name, err)
				}
				bundles[ref] = objects
			}
			if manifest = objects[kind+"/"+step.Resource.Name]; manifest == nil {
				return Contents{}, fmt.Errorf("unpacked bundle ConfigMap %s/%s has no %s %s", ref.Namespace, ref.Name, kind, step.Resource.Name)
			}
		}
		switch kind {
		case KindCSV:
			csv := &operatorsv1alpha1.ClusterServiceVersion{}
			if err := decode(manifest, csv); err != nil {
				return Contents{}, fmt.Errorf("install plan %s: CSV %s: %w", plan.Name, step.Resource.Name, err)
			}
			out.CSV = csv
		case KindCRD:
			out.crds[step.Resource.Name] = manifest
		}
	}
	if out.CSV == nil {
		return Contents{}, fmt.Errorf("install plan %s has no ClusterServiceVersion step for %s", plan.Name, csvName)
	}
	return out, nil
}

// decode reads a manifest: JSON (as OLM writes inline steps) straight into
// the type, YAML (a bundle's files) through sigs.k8s.io/yaml. The JSON path
// matters: sigs.k8s.io/yaml first builds a generic tree of the whole
// document, tens of megabytes for PGO's 1.4 MB PostgresCluster CRD.
func decode(manifest []byte, into any) error {
	if trimmed := bytes.TrimSpace(manifest); len(trimmed) > 0 && trimmed[0] == '{' {
		return json.Unmarshal(trimmed, into)
	}
	return yaml.Unmarshal(manifest, into)
}

// unpacked indexes an unpacked bundle's objects by kind/name.
func unpacked(cm *corev1.ConfigMap) (map[string][]byte, error) {
	data := map[string][]byte{}
	if cm.Annotations[encodingAnnotation] == encodingGzip {
		for key, content := range cm.BinaryData {
			decoded, err := gunzip(content)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", key, err)
			}
			data[key] = decoded
		}
	} else {
		for key, content := range cm.Data {
			data[key] = []byte(content)
		}
	}
	objects := map[string][]byte{}
	for _, content := range data {
		var meta struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        metav1.ObjectMeta `json:"metadata"`
		}
		// Keys that are not an object (OLM skips them too) are skipped.
		if err := yaml.Unmarshal(content, &meta); err != nil || meta.Kind == "" {
			continue
		}
		objects[meta.Kind+"/"+meta.Metadata.Name] = content
	}
	return objects, nil
}

// gunzip decodes binaryData as operator-registry writes it: base64 text of
// gzip.
func gunzip(content []byte) ([]byte, error) {
	z, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(content)))
	if err != nil {
		return nil, err
	}
	defer z.Close()
	return io.ReadAll(z)
}
