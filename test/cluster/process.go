package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// process is one binary the harness started. It runs in its own process
// group, so stopping it reaches anything it forked, and with a parent-death
// signal, so it dies with the harness even when the harness is killed
// without a chance to clean up.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string

	done chan struct{}
	mu   sync.Mutex
	err  error // how it exited, once done is closed
}

// startProcess starts bin with args and env (added to the harness's own),
// logging stdout and stderr to logDir/name.log.
func startProcess(name, bin string, args, env []string, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: create log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return launch(name, cmd, logPath, logFile)
}

// launch starts cmd in a process group of its own that dies with the harness,
// logging to logFile (closed when the process ends).
func launch(name string, cmd *exec.Cmd, logPath string, logFile *os.File) (*process, error) {
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, cmd.Path, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Launched is a process started with Launch, for harnesses that run their
// own binaries alongside the cluster's (test/managerproc runs pgstack's
// manager): one launcher, so every process the suites start is in its own
// process group and dies with the harness.
type Launched struct{ proc *process }

// Launch starts cmd as the cluster's own processes are started: in a process
// group of its own with a parent-death SIGKILL, stdout and stderr to logFile
// (closed when the process ends; logPath names it in errors).
func Launch(name string, cmd *exec.Cmd, logPath string, logFile *os.File) (*Launched, error) {
	p, err := launch(name, cmd, logPath, logFile)
	if err != nil {
		return nil, err
	}
	return &Launched{proc: p}, nil
}

// PID is the process's id, which is also its process group's id.
func (l *Launched) PID() int { return l.proc.pid() }

// Done is closed once the process has ended and been reaped.
func (l *Launched) Done() <-chan struct{} { return l.proc.done }

// Exited says how the process ended, or nil while it runs.
func (l *Launched) Exited() error { return l.proc.exited() }

// Kill SIGKILLs the process group, as a node failure or the OOM killer
// would, and returns once the process has been reaped.
func (l *Launched) Kill() {
	_ = syscall.Kill(-l.proc.pid(), syscall.SIGKILL)
	<-l.proc.done
}

// Stop asks the process group to terminate and kills it if it has not
// within grace; it returns once the process has been reaped.
func (l *Launched) Stop(grace time.Duration) { l.proc.stop(grace) }

// FreePort asks the kernel for a free loopback port (see freePort).
func FreePort() (int, error) { return freePort() }

// pid is the process's id, which is also its process group's id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports how the process ended, or nil while it runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.err == nil {
			return fmt.Errorf("%s exited (log: %s)", p.name, p.log)
		}
		return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.log)
	default:
		return nil
	}
}

// stop asks the process group to terminate and kills it if it has not
// within grace. It returns once the process has been reaped.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// Anything the process forked into its group goes with it.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before ours binds (any outgoing connection on the machine draws
// from the same range); onFreePorts starts again on fresh ports then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check every interval until it says done, the context ends
// or one of the watched processes exits (whose log then says why).
func waitFor(ctx context.Context, what string, interval time.Duration, procs []*process, check func(context.Context) (bool, error)) error {
	var lastErr error
	for {
		for _, p := range procs {
			if err := p.exited(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// portAttempts bounds onFreePorts: a clash is rare, three in a row is not.
const portAttempts = 3

// onFreePorts starts a server on n ports from freePort and waits until it is
// ready. When the server exits because one of its ports was taken before it
// bound (freePort's race with every other process on the machine, such as a
// parallel suite's cluster), it starts again on fresh ports; any other
// failure is returned as it is. attempt numbers the tries from 0, for a
// server that needs a fresh directory each time.
func (c *Cluster) onFreePorts(ctx context.Context, n int, start func(attempt int, ports []int) (*process, error), ready func(*process) error) error {
	for attempt := 0; ; attempt++ {
		ports := make([]int, n)
		for i := range ports {
			port, err := freePort()
			if err != nil {
				return err
			}
			ports[i] = port
		}
		p, err := start(attempt, ports)
		if err != nil {
			return err
		}
		err = ready(p)
		if err == nil || attempt+1 == portAttempts || p.exited() == nil || !p.lostABind() {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		c.opts.Logf("cluster: %s lost a port to another process before it bound; starting it again on fresh ports", p.name)
	}
}

// lostABind says whether the process's log tells that a port it was to
// listen on was taken.
func (p *process) lostABind() bool {
	log, err := os.ReadFile(p.log)
	return err == nil && bytes.Contains(log, []byte("address already in use"))
}
