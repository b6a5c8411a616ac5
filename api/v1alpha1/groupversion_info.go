// Package v1alpha1 contains the PostgresStack API: one object that asks for a
// PostgreSQL cluster run by PGO, installed and upgraded through OLM.
// +kubebuilder:object:generate=true
// +groupName=platform.pgstack.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the PostgresStack API.
	GroupVersion = schema.GroupVersion{Group: "platform.pgstack.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
