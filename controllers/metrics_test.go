package controllers

import (
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// The sample PrometheusRule alerts only on metrics the manager exports.
func TestThePrometheusRuleNamesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../config/prometheus/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, c := range []prometheus.Collector{stackReady, stackBackupsHealthy, stackLastBackup, stackMajorUpgrade, stacksByReady, approvals, reconcileErrors} {
		ch := make(chan *prometheus.Desc, 1)
		c.Describe(ch)
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch((<-ch).String())
		exported[name[1]] = true
	}
	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts++
			names := regexp.MustCompile(`pgstack_[a-z_]+`).FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("alert %s names no pgstack metric: %s", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("alert %s names %s, which the manager does not export", r.Alert, n)
				}
			}
		}
	}
	if rule.Kind != "PrometheusRule" || alerts == 0 {
		t.Errorf("config/prometheus/rules.yaml: kind %q with %d alerts", rule.Kind, alerts)
	}
}
