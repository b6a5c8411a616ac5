package cluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A server that lost one of its ports before it bound starts again on fresh
// ports; any other failure is the caller's, at once.
func TestOnFreePortsStartsAgainOnlyWhenAPortWasTaken(t *testing.T) {
	const (
		lostBind = "echo 'listen tcp 127.0.0.1:4242: bind: address already in use'; exit 1"
		broken   = "echo 'no such flag'; exit 2"
		serves   = "echo serving; exec sleep 60"
	)
	for _, tc := range []struct {
		name      string
		scripts   []string // what the server does on each try; the last repeats
		wantTries int
		wantErr   string
	}{
		{name: "ready at once", scripts: []string{serves}, wantTries: 1},
		{name: "a port taken once", scripts: []string{lostBind, serves}, wantTries: 2},
		{name: "any other exit is not retried", scripts: []string{broken, serves}, wantTries: 1, wantErr: "exited"},
		{name: "ports taken every time give up", scripts: []string{lostBind}, wantTries: portAttempts, wantErr: "exited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{opts: Options{Logf: t.Logf}}
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var tries int
			var procs []*process
			defer func() {
				for _, p := range procs {
					p.stop(time.Second)
				}
			}()
			err := c.onFreePorts(ctx, 2, func(attempt int, ports []int) (*process, error) {
				if attempt != tries || len(ports) != 2 || ports[0] == 0 || ports[1] == 0 {
					t.Errorf("try %d got attempt %d and ports %v", tries, attempt, ports)
				}
				script := tc.scripts[min(tries, len(tc.scripts)-1)]
				tries++
				p, err := startProcess("server", "/bin/sh", []string{"-c", script}, nil, dir)
				procs = append(procs, p)
				return p, err
			}, func(p *process) error {
				// Ready once it says so; an exit comes first.
				return waitFor(ctx, "server", 20*time.Millisecond, []*process{p}, func(context.Context) (bool, error) {
					log, err := os.ReadFile(p.log)
					return strings.Contains(string(log), "serving"), err
				})
			})
			if tries != tc.wantTries {
				t.Errorf("tried %d times, want %d", tries, tc.wantTries)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
