package restarts

import (
	"testing"
	"time"
)

func TestMaxConcurrent(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name  string
		spans Spans
		want  int
	}{
		{name: "none", spans: Spans{}, want: 0},
		{name: "one after another", spans: Spans{"a": {at(0), at(3)}, "b": {at(3), at(6)}, "c": {at(6), at(9)}}, want: 1},
		{name: "all at once", spans: Spans{"a": {at(0), at(5)}, "b": {at(1), at(5)}, "c": {at(2), at(6)}}, want: 3},
		{name: "two at a time", spans: Spans{"a": {at(0), at(3)}, "b": {at(0), at(4)}, "c": {at(3), at(6)}, "d": {at(4), at(7)}}, want: 2},
		{name: "one still restarting counts", spans: Spans{"a": {at(0), time.Time{}}, "b": {at(5), at(6)}}, want: 2},
	}
	for _, tt := range tests {
		if got := tt.spans.MaxConcurrent(); got != tt.want {
			t.Errorf("%s: MaxConcurrent = %d, want %d", tt.name, got, tt.want)
		}
	}
	s := Spans{"a": {at(0), at(3)}, "b": {at(1), time.Time{}}}
	if s.AllDone([]string{"a", "b"}) || !s.AllDone([]string{"a"}) || !s.LastDone().Equal(at(3)) {
		t.Errorf("AllDone/LastDone on %v", s)
	}
}
