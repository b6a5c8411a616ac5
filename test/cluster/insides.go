package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgstack/pgstack/test/insides"
	"github.com/pgstack/pgstack/test/testenv"
)

// StorageClass is the full cluster's default StorageClass: volumes made by
// kube-controller-manager's host-path provisioner.
const StorageClass = "standard"

func defaultStorageClass() *storagev1.StorageClass {
	deleteVolumes := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:   "kubernetes.io/host-path",
		ReclaimPolicy: &deleteVolumes,
	}
}

// insidesSetup is how kwok is told to play pod insides: its extra config
// (stages and exec) and its environment.
type insidesSetup struct {
	kwokConfig string
	kwokEnv    []string
}

// prepareInsides builds test/insides' podexec and installs it under every
// name PGO execs in a directory that is the whole of kwok's PATH, so that a
// command exec'd into any pod runs podexec and nothing else on the host. It
// writes kwok's extra config: the exec rule, a stage that runs the pods of
// LocalImages without making them Ready (localPods does, from the
// process's readiness), and a stage for each of the suite's PodStarts.
func (c *Cluster) prepareInsides() (insidesSetup, error) {
	dir := filepath.Join(c.Dir, "podexec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return insidesSetup{}, err
	}
	bin := filepath.Join(dir, "podexec")
	build := exec.Command("go", "build", "-o", bin, "./test/insides/cmd/podexec")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return insidesSetup{}, fmt.Errorf("build test/insides/cmd/podexec: %w\n%s", err, out)
	}
	for _, name := range insides.Names {
		if err := os.Symlink("podexec", filepath.Join(dir, name)); err != nil {
			return insidesSetup{}, err
		}
	}
	// Pods of a local image run without kwok making them Ready: localPods
	// does, from the process's readiness. Then the suite's own PodStarts.
	var starts []PodStart
	for _, img := range append([]LocalImage{PGOLocalImage(c.bins.pgo)}, c.opts.LocalImages...) {
		starts = append(starts, PodStart{Match: fmt.Sprintf(`.spec.containers[0].image | startswith("%s:")`, img.Repository),
			NeverReady: true, reason: "LocalProcessStarting"})
	}
	starts = append(starts, c.opts.PodStarts...)
	var config bytes.Buffer
	if err := kwokConfig.Execute(&config, map[string]any{"WorkDir": dir}); err != nil {
		return insidesSetup{}, err
	}
	// Each stage selects its pods and none an earlier one selects, so which
	// stage starts a pod never depends on kwok's weighted draw among the
	// stages that match.
	for i, start := range starts {
		var earlier []string
		for _, e := range starts[:i] {
			earlier = append(earlier, e.Match)
		}
		if err := podStartStage.Execute(&config, map[string]any{"Index": i, "Match": start.Match, "Earlier": earlier,
			"DelayMs": start.Delay.Milliseconds(), "Ready": !start.NeverReady, "Reason": start.reason, "Fails": start.Fails}); err != nil {
			return insidesSetup{}, err
		}
	}
	path := filepath.Join(c.Dir, "kwok-insides.yaml")
	if err := os.WriteFile(path, config.Bytes(), 0o644); err != nil {
		return insidesSetup{}, err
	}
	return insidesSetup{kwokConfig: path, kwokEnv: []string{
		"PATH=" + dir,
		"PODEXEC_LOG=" + filepath.Join(c.Dir, "logs", "podexec.log"),
		"PODEXEC_UNKNOWN=" + c.podexecUnknown(),
		"PODEXEC_TIMELINE=" + filepath.Join(dir, "timeline"),
		// A switchover moves Patroni's leader key through the API server.
		"KUBECONFIG=" + c.Kubeconfig,
	}}, nil
}

func (c *Cluster) podexecUnknown() string { return filepath.Join(c.Dir, "podexec-unknown.log") }

// kwokConfig: exec runs on the host (in podexec's directory, with kwok's
// PATH).
var kwokConfig = template.Must(template.New("kwok").Parse(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: pod-insides
spec:
  execs:
  - local:
      workDir: {{ .WorkDir }}
`))

// podStartStage starts a pod that Match selects (and no earlier stage
// does) after DelayMs, Ready or not, or fails it (its containers exit 1,
// the pod Failed, as a Job's pod whose command fails); weight 1 wins over
// kwok's fast pod-ready stage, whose status template this follows (ready
// false and the Ready condition False when not Ready).
var podStartStage = template.Must(template.New("podstart").Parse(`
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-start-{{ .Index }}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  weight: 1
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '{{ .Match }}'
      operator: 'In'
      values: ['true']
{{- range .Earlier }}
    - key: '{{ . }}'
      operator: 'NotIn'
      values: ['true']
{{- end }}
  delay:
    durationMilliseconds: {{ .DelayMs }}
  next:
    statusTemplate: |
      {{"{{"}} $now := Now {{"}}"}}
{{- if .Fails }}
      conditions:
      - lastTransitionTime: {{"{{"}} $now | Quote {{"}}"}}
        status: "False"
        reason: PodFailed
        type: Ready
      containerStatuses:
      {{"{{"}} range .spec.containers {{"}}"}}
      - image: {{"{{"}} .image | Quote {{"}}"}}
        name: {{"{{"}} .name | Quote {{"}}"}}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{"{{"}} $now | Quote {{"}}"}}
            finishedAt: {{"{{"}} $now | Quote {{"}}"}}
      {{"{{"}} end {{"}}"}}
      hostIP: "127.0.0.1"
      phase: Failed
      startTime: {{"{{"}} $now | Quote {{"}}"}}
{{- else }}
      conditions:
      - lastTransitionTime: {{"{{"}} $now | Quote {{"}}"}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{"{{"}} $now | Quote {{"}}"}}
        status: "{{ if .Ready }}True{{ else }}False{{ end }}"
        {{- with .Reason }}
        reason: {{ . }}
        {{- end }}
        type: Ready
      - lastTransitionTime: {{"{{"}} $now | Quote {{"}}"}}
        status: "{{ if .Ready }}True{{ else }}False{{ end }}"
        {{- with .Reason }}
        reason: {{ . }}
        {{- end }}
        type: ContainersReady
      containerStatuses:
      {{"{{"}} range .spec.containers {{"}}"}}
      - image: {{"{{"}} .image | Quote {{"}}"}}
        name: {{"{{"}} .name | Quote {{"}}"}}
        ready: {{ .Ready }}
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{"{{"}} $now | Quote {{"}}"}}
      {{"{{"}} end {{"}}"}}
      {{"{{"}} $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) {{"}}"}}
      {{"{{"}} with $podIPs {{"}}"}}
      podIP: {{"{{"}} index . 0 | Quote {{"}}"}}
      podIPs:
      {{"{{"}} range . {{"}}"}}
      - ip: {{"{{"}} . | Quote {{"}}"}}
      {{"{{"}} end {{"}}"}}
      {{"{{"}} end {{"}}"}}
      hostIP: "127.0.0.1"
      phase: Running
      startTime: {{"{{"}} $now | Quote {{"}}"}}
{{- end }}
`))

// StandInErrors are every failure of what stands in for containers: a
// local operator process that could not start or exited while its pod ran,
// a command exec'd into a pod that podexec does not play, a Patroni record
// the stand-in could not write. Suites on the full cluster fail when there
// is any: a stand-in that quietly does nothing would let a test pass.
func (c *Cluster) StandInErrors() []error {
	errs := c.LocalPodErrors()
	if data, err := os.ReadFile(c.podexecUnknown()); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			errs = append(errs, fmt.Errorf("a command exec'd into a pod is not played by test/insides: %s", line))
		}
	}
	if c.patroni != nil {
		errs = append(errs, c.patroni.Errors()...)
	}
	return errs
}

// ReportStandInErrors writes each of StandInErrors to w and says whether
// there was any: what a suite's TestMain calls after its tests, failing the
// run when it returns true.
func (c *Cluster) ReportStandInErrors(w io.Writer) bool {
	errs := c.StandInErrors()
	for _, err := range errs {
		fmt.Fprintln(w, "local cluster: stand-in:", err)
	}
	return len(errs) > 0
}

func (c *Cluster) startPatroni() error {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := insides.StartPatroni(ctx, c.Config, c.opts.Logf)
	if err != nil {
		cancel()
		return err
	}
	c.patroni, c.stopPatroni = p, cancel
	return nil
}
