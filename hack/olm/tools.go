//go:build tools

// Package tools pins the commands this module builds: OLM's two operators,
// opm and kwok share most of their packages (client-go, apimachinery, grpc),
// so one module and one go build compile each shared package once.
package tools

import (
	_ "github.com/operator-framework/operator-lifecycle-manager/cmd/catalog"
	_ "github.com/operator-framework/operator-lifecycle-manager/cmd/olm"
	_ "github.com/operator-framework/operator-registry/cmd/opm"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
