//go:build tools

// Package tools pins the commands this module builds: the three Kubernetes
// components and the etcd they run on (etcd's server shares kube-apiserver's
// etcd client, grpc and protobuf, so one go build compiles them once).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
