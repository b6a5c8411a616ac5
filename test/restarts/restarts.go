// Package restarts measures how PGO restarts clusters: each cluster's span
// from the change of its instance StatefulSets' template (PGO deletes pods
// only after it) until every replica runs Ready on the new template, as
// seen through a watch; and the most clusters restarting at once. The e2e
// suite asserts on it, make bench reports it.
package restarts

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	labelInstance = "postgres-operator.crunchydata.com/instance"
	labelCluster  = "postgres-operator.crunchydata.com/cluster"
)

// Span is one cluster's restart; Done is zero while it lasts.
type Span struct{ Start, Done time.Time }

// Spans are restarts by cluster (namespace/name).
type Spans map[string]Span

// MaxConcurrent is the most clusters restarting at one time.
func (s Spans) MaxConcurrent() int {
	most := 0
	for _, a := range s {
		n := 0
		for _, b := range s {
			if !b.Start.After(a.Start) && (b.Done.IsZero() || b.Done.After(a.Start)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// AllDone reports whether every named cluster finished a restart.
func (s Spans) AllDone(clusters []string) bool {
	for _, c := range clusters {
		if s[c].Done.IsZero() {
			return false
		}
	}
	return true
}

// LastDone is when the last restart finished.
func (s Spans) LastDone() time.Time {
	var last time.Time
	for _, sp := range s {
		if sp.Done.After(last) {
			last = sp.Done
		}
	}
	return last
}

// Recorder watches instance StatefulSets from its start.
type Recorder struct {
	keep   func(namespace string) bool
	mu     sync.Mutex
	base   map[string]string // StatefulSet -> its template's images at the start
	spans  Spans
	cancel context.CancelFunc
	done   chan struct{}
}

// Record starts watching the instance StatefulSets in the namespaces keep
// accepts.
func Record(ctx context.Context, cfg *rest.Config, keep func(namespace string) bool) (*Recorder, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Recorder{keep: keep, base: map[string]string{}, spans: Spans{}, cancel: cancel, done: make(chan struct{})}
	list, err := cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{LabelSelector: labelInstance})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("list instance StatefulSets: %w", err)
	}
	for i := range list.Items {
		if s := &list.Items[i]; keep(s.Namespace) {
			r.base[s.Namespace+"/"+s.Name] = TemplateImages(s)
		}
	}
	w, err := cs.AppsV1().StatefulSets("").Watch(ctx, metav1.ListOptions{LabelSelector: labelInstance, ResourceVersion: list.ResourceVersion})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch instance StatefulSets: %w", err)
	}
	go func() {
		defer close(r.done)
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*appsv1.StatefulSet); ok && ev.Type != watch.Deleted {
				r.observe(s, time.Now())
			}
		}
	}()
	return r, nil
}

func (r *Recorder) observe(s *appsv1.StatefulSet, now time.Time) {
	if !r.keep(s.Namespace) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	name := s.Namespace + "/" + s.Name
	images := TemplateImages(s)
	base, known := r.base[name]
	if !known {
		r.base[name] = images // made after the start: not a restart
		return
	}
	if images == base {
		return
	}
	cluster := s.Namespace + "/" + s.Labels[labelCluster]
	span := r.spans[cluster]
	if span.Start.IsZero() {
		span.Start = now
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if span.Done.IsZero() && s.Status.ObservedGeneration >= s.Generation && s.Status.UpdatedReplicas == want && s.Status.ReadyReplicas == want {
		span.Done = now
	}
	r.spans[cluster] = span
}

// Spans are the restarts seen so far.
func (r *Recorder) Spans() Spans {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(Spans, len(r.spans))
	for k, v := range r.spans {
		out[k] = v
	}
	return out
}

// Stop ends the watch and returns the restarts seen.
func (r *Recorder) Stop() Spans {
	r.cancel()
	<-r.done
	return r.Spans()
}

// TemplateImages are a StatefulSet template's containers as name=image.
func TemplateImages(s *appsv1.StatefulSet) string {
	var list []string
	for _, c := range s.Spec.Template.Spec.Containers {
		list = append(list, c.Name+"="+c.Image)
	}
	return strings.Join(list, " ")
}
