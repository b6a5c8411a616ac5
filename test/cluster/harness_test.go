package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pgstack/pgstack/test/cluster"
)

// helperEnv makes the test binary act as a harness user that fails or is
// interrupted, for TestHarnessLeavesNoProcessBehind.
const helperEnv = "PGSTACK_HARNESS_HELPER"

func helperMode() string { return os.Getenv(helperEnv) }

// TestHarnessLeavesNoProcessBehind runs the harness in a subprocess (this
// test binary again) that fails, is interrupted or is killed, and checks
// that none of the processes it started survives. In the subprocess the
// same test is the harness user: it starts a minimal cluster, reports its
// process ids and directory, then fails or waits for the signal.
func TestHarnessLeavesNoProcessBehind(t *testing.T) {
	if mode := helperMode(); mode != "" {
		harnessUser(t, mode)
		return
	}
	for _, tc := range []struct {
		mode   string
		signal syscall.Signal // sent once the subprocess reports; 0: it fails by itself
		dirGo  bool           // whether the cluster's directory must be gone too
	}{
		{mode: "fail", dirGo: true},
		{mode: "interrupt", signal: syscall.SIGINT, dirGo: true},
		// SIGKILL leaves no chance to clean up: the parent-death signal
		// still takes every process down; only the directory remains.
		{mode: "kill", signal: syscall.SIGKILL},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHarnessLeavesNoProcessBehind$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pids, dir, output := readReport(t, stdout)
			if tc.signal != 0 {
				if err := cmd.Process.Signal(tc.signal); err != nil {
					t.Fatalf("signal subprocess: %v", err)
				}
			}
			waitErr := cmd.Wait()
			if waitErr == nil {
				t.Errorf("subprocess in mode %s exited 0; want a failure or a signal death", tc.mode)
			}
			for _, pid := range pids {
				pid := pid
				err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
					return !alive(pid), nil
				})
				if err != nil {
					t.Errorf("process %d (%s) outlived the harness in mode %s", pid, commandOf(pid), tc.mode)
				}
			}
			if _, err := os.Stat(dir); tc.dirGo && !os.IsNotExist(err) {
				t.Errorf("cluster directory %s left behind (stat: %v)", dir, err)
			}
			_ = os.RemoveAll(dir) // after a SIGKILL nothing else removes it
			if t.Failed() {
				t.Logf("subprocess output:\n%s\n%s", output, stderr.String())
			}
		})
	}
}

// readReport reads the subprocess's "harness: pids ... dir ..." line.
func readReport(t *testing.T, stdout interface{ Read([]byte) (int, error) }) (pids []int, dir, output string) {
	t.Helper()
	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	var seen []string
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("subprocess ended without reporting its processes:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if rest, ok := strings.CutPrefix(line, "harness: pids "); ok {
				fields := strings.Fields(rest)
				for _, f := range fields[:len(fields)-2] {
					pid, _ := strconv.Atoi(f)
					pids = append(pids, pid)
				}
				// Drain the rest so the subprocess never blocks on its output.
				go func() {
					for range lines {
					}
				}()
				return pids, fields[len(fields)-1], strings.Join(seen, "\n")
			}
		case <-timeout:
			t.Fatalf("subprocess did not report within 2 minutes:\n%s", strings.Join(seen, "\n"))
		}
	}
}

// harnessUser is the subprocess side.
func harnessUser(t *testing.T, mode string) {
	c, err := cluster.StartMinimal(context.Background(), cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	if mode == "interrupt" {
		c.StopOnSignal()
	}
	var pids []string
	for _, pid := range c.PIDs() {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Printf("harness: pids %s dir %s\n", strings.Join(pids, " "), c.Dir)
	if mode == "fail" {
		t.Fatal("the harness user fails on purpose; its cleanup must stop the cluster")
	}
	// Wait for the parent's signal; the bound only keeps a lost signal
	// from hanging the suite.
	select {
	case <-time.After(2 * time.Minute):
		t.Fatal("no signal arrived")
	case <-make(chan struct{}):
	}
}

// alive says whether pid runs (a zombie awaiting its reaper does not).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
		return data[i+2] != 'Z'
	}
	return true
}

func commandOf(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(data), "\x00", " ")
}
