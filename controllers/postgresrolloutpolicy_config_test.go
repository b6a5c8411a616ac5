package controllers

import (
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestOperatorConfigIdentity(t *testing.T) {
	mirror := corev1.EnvVar{Name: "RELATED_IMAGE_POSTGRES_16", Value: "mirror.example.com/pg:16"}
	workers := corev1.EnvVar{Name: "PGO_WORKERS", Value: "4"}
	memory := &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
	none := configHash(platformv1alpha1.OperatorConfig{})
	for _, tt := range []struct {
		name   string
		config platformv1alpha1.OperatorConfig
		same   bool // the same identity as no configuration
	}{
		{"nothing", platformv1alpha1.OperatorConfig{}, true},
		{"an empty env is none", platformv1alpha1.OperatorConfig{Env: []corev1.EnvVar{}}, true},
		{"a variable", platformv1alpha1.OperatorConfig{Env: []corev1.EnvVar{mirror}}, false},
		{"resources", platformv1alpha1.OperatorConfig{Resources: memory}, false},
	} {
		if got := configHash(tt.config) == none; got != tt.same || len(configHash(tt.config)) != 10 {
			t.Errorf("%s: hash %s, same as none = %v, want %v", tt.name, configHash(tt.config), got, tt.same)
		}
	}
	if configHash(platformv1alpha1.OperatorConfig{Env: []corev1.EnvVar{mirror, workers}}) == configHash(platformv1alpha1.OperatorConfig{Env: []corev1.EnvVar{mirror}}) {
		t.Error("a second variable does not change the identity")
	}

	// The Subscription's config, and the policy's written into it, leaving
	// the rest of its config alone.
	sub := &operatorsv1alpha1.Subscription{Spec: &operatorsv1alpha1.SubscriptionSpec{}}
	if configHash(subscriptionConfig(sub)) != none {
		t.Error("a Subscription without config is not 'none'")
	}
	sub.Spec.Config = &operatorsv1alpha1.SubscriptionConfig{NodeSelector: map[string]string{"pool": "ops"}}
	want := platformv1alpha1.OperatorConfig{Env: []corev1.EnvVar{mirror}, Resources: memory}
	applyConfig(sub, want)
	if configHash(subscriptionConfig(sub)) != configHash(want) || sub.Spec.Config.NodeSelector["pool"] != "ops" {
		t.Errorf("after applyConfig the Subscription's config is %+v", sub.Spec.Config)
	}
}

func TestSameEnv(t *testing.T) {
	fromField := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}
	defaulted := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}
	for _, tt := range []struct {
		name      string
		got, want corev1.EnvVar
		same      bool
	}{
		{"same value", corev1.EnvVar{Name: "A", Value: "1"}, corev1.EnvVar{Name: "A", Value: "1"}, true},
		{"another value", corev1.EnvVar{Name: "A", Value: "2"}, corev1.EnvVar{Name: "A", Value: "1"}, false},
		{"missing", corev1.EnvVar{}, corev1.EnvVar{Name: "A", Value: "1"}, false},
		{"a field reference the API server defaulted", corev1.EnvVar{Name: "NS", ValueFrom: defaulted}, corev1.EnvVar{Name: "NS", ValueFrom: fromField}, true},
		{"a value where a reference is wanted", corev1.EnvVar{Name: "NS", Value: "x"}, corev1.EnvVar{Name: "NS", ValueFrom: fromField}, false},
	} {
		if got := sameEnv(tt.got, tt.want); got != tt.same {
			t.Errorf("%s: sameEnv = %v, want %v", tt.name, got, tt.same)
		}
	}
}
