package insides

import (
	"errors"
	"fmt"
	"net"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Only what the API server answered and meant counts against the stand-in.
func TestRefusedCountsOnlyAnswersThatMeanIt(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"forbidden", apierrors.NewForbidden(pods, "p", errors.New("no")), true},
		{"invalid", apierrors.NewBadRequest("bad patch"), true},
		{"wrapped forbidden", fmt.Errorf("set role: %w", apierrors.NewForbidden(pods, "p", errors.New("no"))), true},
		{"conflict", apierrors.NewConflict(pods, "p", errors.New("stale")), false},
		{"gone", apierrors.NewNotFound(pods, "p"), false},
		{"server busy", apierrors.NewServiceUnavailable("restarting"), false},
		{"server timeout", apierrors.NewServerTimeout(pods, "patch", 1), false},
		{"no answer", fmt.Errorf("read PostgresCluster: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("%s: refused = %v, want %v", tc.name, got, tc.want)
		}
	}
}
