package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func sharingStack(ns, name string, created time.Time, channel, source string, versions string) platformv1alpha1.PostgresStack {
	s := platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
	s.Spec.Operator = platformv1alpha1.OperatorSpec{Namespace: "operators", Package: "postgresql", Channel: channel,
		Source: source, SourceNamespace: "olm", Approval: platformv1alpha1.ApprovalAutomatic, Versions: versions}
	return s
}

func names(stacks []platformv1alpha1.PostgresStack) []string {
	out := make([]string, 0, len(stacks))
	for _, s := range stacks {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	return out
}

func TestMismatch(t *testing.T) {
	op := sharingStack("a", "x", time.Time{}, "v5", "catalog", "").Spec.Operator
	tests := []struct {
		name   string
		sub    SubscriptionSettings
		wantIn []string
	}{
		{name: "same settings", sub: SubscriptionSettings{Channel: "v5", Source: "catalog", SourceNamespace: "olm"}},
		{name: "other channel", sub: SubscriptionSettings{Channel: "v6", Source: "catalog", SourceNamespace: "olm"}, wantIn: []string{`channel "v6"`, `asks for "v5"`}},
		{name: "other catalog namespace", sub: SubscriptionSettings{Channel: "v5", Source: "catalog", SourceNamespace: "openshift-marketplace"}, wantIn: []string{"catalog openshift-marketplace/catalog", "asks for olm/catalog"}},
		{name: "both", sub: SubscriptionSettings{Channel: "v6", Source: "other", SourceNamespace: "olm"}, wantIn: []string{"channel", " and ", "catalog olm/other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Mismatch(tt.sub, op)
			if (got == "") != (len(tt.wantIn) == 0) {
				t.Fatalf("Mismatch = %q, want a mismatch: %v", got, len(tt.wantIn) > 0)
			}
			for _, part := range tt.wantIn {
				if !strings.Contains(got, part) {
					t.Errorf("Mismatch = %q, want it to contain %q", got, part)
				}
			}
		})
	}
}

func TestOldestFirstAndSeed(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	self := sharingStack("z", "self", t0.Add(time.Hour), "v5", "catalog", "")
	tests := []struct {
		name      string
		users     []platformv1alpha1.PostgresStack
		wantOrder []string
		wantSeed  string
	}{
		{name: "no other stack: the stack itself", wantOrder: []string{}, wantSeed: "z/self"},
		{name: "older first",
			users:     []platformv1alpha1.PostgresStack{sharingStack("b", "new", t0.Add(2*time.Hour), "v5", "catalog", ""), sharingStack("a", "old", t0, "v6", "catalog", "")},
			wantOrder: []string{"a/old", "b/new"}, wantSeed: "a/old"},
		{name: "same second: by namespace/name",
			users:     []platformv1alpha1.PostgresStack{sharingStack("b", "x", t0, "v5", "catalog", ""), sharingStack("a", "y", t0, "v5", "catalog", ""), sharingStack("a", "x", t0, "v5", "catalog", "")},
			wantOrder: []string{"a/x", "a/y", "b/x"}, wantSeed: "a/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			OldestFirst(tt.users)
			if got := names(tt.users); !reflect.DeepEqual(got, tt.wantOrder) {
				t.Errorf("OldestFirst = %v, want %v", got, tt.wantOrder)
			}
			seed := Seed(tt.users, &self)
			if got := seed.Namespace + "/" + seed.Name; got != tt.wantSeed {
				t.Errorf("Seed = %s, want %s", got, tt.wantSeed)
			}
		})
	}
}

func TestVoters(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sub := SubscriptionSettings{Channel: "v5", Source: "catalog", SourceNamespace: "olm"}
	agreeing := sharingStack("a", "agrees", t0, "v5", "catalog", "<5.9.0")
	alsoAgreeing := sharingStack("b", "agrees-too", t0.Add(time.Minute), "v5", "catalog", "")
	conflicting := sharingStack("c", "conflicts", t0.Add(2*time.Minute), "v6", "catalog", ">=5.9.0")
	tests := []struct {
		name  string
		users []platformv1alpha1.PostgresStack
		self  platformv1alpha1.PostgresStack
		want  []string
	}{
		{name: "every agreeing stack has a say", users: []platformv1alpha1.PostgresStack{agreeing, alsoAgreeing}, self: alsoAgreeing, want: []string{"a/agrees", "b/agrees-too"}},
		{name: "a conflicting stack has none", users: []platformv1alpha1.PostgresStack{agreeing, conflicting}, self: agreeing, want: []string{"a/agrees"}},
		{name: "even when it is the one judging", users: []platformv1alpha1.PostgresStack{agreeing, conflicting}, self: conflicting, want: []string{"a/agrees"}},
		{name: "none agree: the judging stack alone", users: []platformv1alpha1.PostgresStack{conflicting}, self: conflicting, want: []string{"c/conflicts"}},
		{name: "no live stack (the judging one is deleting): itself", self: agreeing, want: []string{"a/agrees"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range Voters(sub, tt.users, &tt.self) {
				got = append(got, p.Stack)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Voters = %v, want %v", got, tt.want)
			}
		})
	}
	if p := PolicyOf(&agreeing); p.Versions != "<5.9.0" || p.Approval != platformv1alpha1.ApprovalAutomatic || p.Stack != "a/agrees" {
		t.Errorf("PolicyOf = %+v", p)
	}
}
