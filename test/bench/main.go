package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgstack/pgstack/test/testenv"
)

func main() {
	root := testenv.RepoRoot()
	manager := flag.String("manager", filepath.Join(root, "bin", "manager"), "the pgstack manager binary (make build)")
	out := flag.String("out", filepath.Join(root, "bench", "results.json"), "where the results are written")
	managerArgs := flag.String("manager-args", os.Getenv("MANAGER_ARGS"), "extra manager flags, space-separated (MANAGER_ARGS)")
	flag.Parse()
	if err := run(*manager, *out, strings.Fields(*managerArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(manager, out string, managerArgs []string) error {
	stacks, err := envInt("STACKS", 1000)
	if err != nil {
		return err
	}
	idle, err := envDuration("IDLE", time.Minute)
	if err != nil {
		return err
	}
	start, err := envDuration("DATABASE_START", 5*time.Second)
	if err != nil {
		return err
	}
	workers, err := envInt("PGO_WORKERS", 0)
	if err != nil {
		return err
	}
	upgradesUpTo, err := envInt("UPGRADES_UP_TO", stacks)
	if err != nil {
		return err
	}
	baselineReadyUpTo, err := envInt("BASELINE_READY_UP_TO", 0)
	if err != nil {
		return err
	}
	rounds := []int{stacks}
	if small := stacks / 10; small >= 1 {
		rounds = []int{small, stacks}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := Run(ctx, Config{
		Manager: manager, ManagerArgs: managerArgs, Rounds: rounds, Idle: idle,
		// PGO's own 2 workers pace the baseline and the operator upgrades
		// (over 7 minutes for 110 clusters under load): allow 10 s a stack.
		PhaseTimeout: max(10*time.Minute, time.Duration(stacks)*10*time.Second), CopyTimeout: 10 * time.Minute, DatabaseStart: start, Out: os.Stdout,
		PGOWorkers: workers, UpgradesUpTo: upgradesUpTo, BaselineReadyUpTo: baselineReadyUpTo,
	})
	if runErr != nil {
		return runErr
	}
	if err := writeResults(out, res); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", out)
	return nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive whole number", name, v)
	}
	return n, nil
}

// envDuration reads a Go duration ("90s") or a number of seconds.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 60s", name, v)
	}
	return d, nil
}
