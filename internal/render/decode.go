package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
)

// DecodeStacks reads every YAML document in r as a PostgresStack. Decoding
// is strict: an unknown or duplicated field is an error rather than being
// dropped, because a typo silently ignored is a setting silently lost.
// Empty documents (only comments or whitespace) are skipped.
func DecodeStacks(r io.Reader) ([]*v1alpha1.PostgresStack, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var stacks []*v1alpha1.PostgresStack
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return stacks, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		stack, err := DecodeStack(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if stack != nil {
			stacks = append(stacks, stack)
		}
	}
}

// DecodeStack decodes one YAML document; it returns nil for an empty one.
func DecodeStack(doc []byte) (*v1alpha1.PostgresStack, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	var generic any
	if err := yaml.Unmarshal(doc, &generic); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if generic == nil {
		return nil, nil
	}
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if meta.APIVersion != v1alpha1.GroupVersion.String() || meta.Kind != "PostgresStack" {
		return nil, fmt.Errorf("apiVersion %q kind %q is not a PostgresStack (want apiVersion %s, kind PostgresStack)",
			meta.APIVersion, meta.Kind, v1alpha1.GroupVersion)
	}
	stack := &v1alpha1.PostgresStack{}
	jsonDoc, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("PostgresStack: %w", err)
	}
	strictErrs, err := kjson.UnmarshalStrict(jsonDoc, stack, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("PostgresStack %q: %w", stack.Name, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("PostgresStack %q: %w", stack.Name, errors.Join(strictErrs...))
	}
	if stack.Name == "" {
		return nil, fmt.Errorf("PostgresStack has no metadata.name")
	}
	return stack, nil
}
