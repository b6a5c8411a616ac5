// Package render turns a PostgresStack into the PostgresCluster PGO runs.
// It is a pure function of the stack: no client, no clock, and the same
// stack always renders to the same object.
package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/pgstack/pgstack/api/v1alpha1"
)

// The PostgresCluster's identity and the labels that tie it to its stack.
const (
	APIVersion = "postgres-operator.crunchydata.com/v1beta1"
	Kind       = "PostgresCluster"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "pgstack"
	LabelStack     = "platform.pgstack.dev/stack"

	// AnnotationRestore is PGO's trigger for an in-place restore: PGO runs
	// one each time its value changes.
	AnnotationRestore = "postgres-operator.crunchydata.com/pgbackrest-restore"
)

// Render returns the PostgresCluster for a stack: same name and namespace,
// the spec built from spec.postgres with its defaults applied, and
// spec.postgres.overrides merged last. Invalid stacks are refused.
func Render(stack *v1alpha1.PostgresStack) (*unstructured.Unstructured, error) {
	if err := Validate(stack); err != nil {
		return nil, fmt.Errorf("PostgresStack %s is invalid: %w", stackName(stack), err)
	}
	postgres := Defaulted(&stack.Spec.Postgres)

	spec, err := clusterSpec(postgres)
	if err != nil {
		return nil, fmt.Errorf("render PostgresStack %s: %w", stackName(stack), err)
	}
	if o := postgres.Overrides; o != nil && len(o.Raw) > 0 {
		var overrides map[string]any
		if err := utiljson.Unmarshal(o.Raw, &overrides); err != nil {
			return nil, fmt.Errorf("render PostgresStack %s: spec.postgres.overrides: %w", stackName(stack), err)
		}
		spec = MergeOverrides(spec, overrides)
	}
	if err := checkRequired(spec, stack.Name); err != nil {
		return nil, fmt.Errorf("render PostgresStack %s: %w", stackName(stack), err)
	}

	metadata := map[string]any{
		"name": stack.Name,
		"labels": map[string]any{
			LabelManagedBy: ManagedBy,
			LabelStack:     stack.Name,
		},
	}
	if stack.Namespace != "" {
		metadata["namespace"] = stack.Namespace
	}
	if postgres.Restore != nil {
		metadata["annotations"] = map[string]any{AnnotationRestore: postgres.Restore.ID}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": APIVersion,
		"kind":       Kind,
		"metadata":   metadata,
		"spec":       spec,
	}}, nil
}

func stackName(stack *v1alpha1.PostgresStack) string {
	if stack.Namespace == "" {
		return strconv.Quote(stack.Name)
	}
	return strconv.Quote(stack.Namespace + "/" + stack.Name)
}

// clusterSpec builds the PostgresCluster spec from a defaulted postgres spec.
func clusterSpec(pg *v1alpha1.PostgresSpec) (map[string]any, error) {
	spec := map[string]any{"postgresVersion": int64(pg.Version)}
	if pg.Image != "" {
		spec["image"] = pg.Image
	}
	if err := setJSON(spec, "imagePullSecrets", pg.ImagePullSecrets); err != nil {
		return nil, fmt.Errorf("spec.postgres.imagePullSecrets: %w", err)
	}
	if m := pg.Metadata; m != nil && (len(m.Labels) > 0 || len(m.Annotations) > 0) {
		v, err := jsonValue(m)
		if err != nil {
			return nil, fmt.Errorf("spec.postgres.metadata: %w", err)
		}
		spec["metadata"] = v
	}
	config := map[string]any{}
	if err := setJSON(config, "parameters", pg.Parameters); err != nil {
		return nil, fmt.Errorf("spec.postgres.parameters: %w", err)
	}
	if err := setJSON(config, "files", pg.ConfigFiles); err != nil {
		return nil, fmt.Errorf("spec.postgres.configFiles: %w", err)
	}
	if len(config) > 0 {
		spec["config"] = config
	}
	if err := setJSON(spec, "authentication", pg.Authentication); err != nil {
		return nil, fmt.Errorf("spec.postgres.authentication: %w", err)
	}
	if len(pg.Users) > 0 {
		users := make([]any, 0, len(pg.Users))
		for _, u := range pg.Users {
			user := map[string]any{"name": u.Name}
			if len(u.Databases) > 0 {
				user["databases"] = stringList(u.Databases)
			}
			if u.Options != "" {
				user["options"] = u.Options
			}
			if u.PasswordType != "" {
				user["password"] = map[string]any{"type": string(u.PasswordType)}
			}
			users = append(users, user)
		}
		spec["users"] = users
	}
	if d := pg.DatabaseInitSQL; d != nil {
		spec["databaseInitSQL"] = map[string]any{"name": d.Name, "key": d.Key}
	}

	instances, err := instanceSets(pg)
	if err != nil {
		return nil, err
	}
	spec["instances"] = instances
	if pg.SyncReplication {
		spec["patroni"] = map[string]any{"dynamicConfiguration": map[string]any{"synchronous_mode": true}}
	}

	backups, err := backupsSpec(pg)
	if err != nil {
		return nil, err
	}
	if backups != nil {
		spec["backups"] = backups
	}
	if s := pg.Standby; s != nil {
		standby := map[string]any{"enabled": true}
		if s.RepoName != "" {
			standby["repoName"] = string(s.RepoName)
		}
		if s.Host != "" {
			standby["host"] = s.Host
		}
		if s.Port != nil {
			standby["port"] = int64(*s.Port)
		}
		spec["standby"] = standby
	}
	if c := pg.CloneFrom; c != nil {
		spec["dataSource"] = dataSource(c)
	}
	if m := pg.Monitoring; m != nil && *m.Enabled {
		exporter := map[string]any{}
		if m.Image != "" {
			exporter["image"] = m.Image
		}
		if err := setJSON(exporter, "resources", m.Resources); err != nil {
			return nil, fmt.Errorf("spec.postgres.monitoring.resources: %w", err)
		}
		spec["monitoring"] = map[string]any{"pgmonitor": map[string]any{"exporter": exporter}}
	}
	if t := pg.TLS; t != nil {
		if t.CustomTLSSecret != "" {
			spec["customTLSSecret"] = map[string]any{"name": t.CustomTLSSecret}
		}
		if t.CustomReplicationTLSSecret != "" {
			spec["customReplicationTLSSecret"] = map[string]any{"name": t.CustomReplicationTLSSecret}
		}
	}
	if s := pg.Service; s != nil {
		service, err := serviceSpec(s.Type, &s.ServiceMetadata)
		if err != nil {
			return nil, fmt.Errorf("spec.postgres.service: %w", err)
		}
		if len(service) > 0 {
			spec["service"] = service
		}
	}
	if p := pg.Pooler; p != nil && *p.Enabled {
		bouncer, err := pgBouncer(p, pg.Scheduling)
		if err != nil {
			return nil, err
		}
		spec["proxy"] = map[string]any{"pgBouncer": bouncer}
	}
	return spec, nil
}

func instanceSets(pg *v1alpha1.PostgresSpec) ([]any, error) {
	sets := make([]any, 0, len(pg.Instances))
	for i, in := range pg.Instances {
		set := map[string]any{
			"name":                in.Name,
			"replicas":            int64(in.Replicas),
			"dataVolumeClaimSpec": volumeClaimSpec(in.Storage.String(), in.StorageClass),
		}
		if err := setJSON(set, "resources", in.Resources); err != nil {
			return nil, fmt.Errorf("spec.postgres.instances[%d].resources: %w", i, err)
		}
		if w := in.WALVolume; w != nil {
			claim, err := volumeClaim(w)
			if err != nil {
				return nil, fmt.Errorf("spec.postgres.instances[%d].walVolume: %w", i, err)
			}
			set["walVolumeClaimSpec"] = claim
		}
		if len(in.Tablespaces) > 0 {
			tablespaces := make([]any, 0, len(in.Tablespaces))
			for j, t := range in.Tablespaces {
				claim, err := volumeClaim(&t.Volume)
				if err != nil {
					return nil, fmt.Errorf("spec.postgres.instances[%d].tablespaces[%d]: %w", i, j, err)
				}
				tablespaces = append(tablespaces, map[string]any{"name": t.Name, "dataVolumeClaimSpec": claim})
			}
			set["tablespaceVolumes"] = tablespaces
		}
		scheduling := pg.Scheduling
		if in.Scheduling != nil {
			scheduling = in.Scheduling
		}
		if err := applyScheduling(set, scheduling, true); err != nil {
			return nil, fmt.Errorf("spec.postgres.instances[%d].scheduling: %w", i, err)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

func volumeClaimSpec(storage, storageClass string) map[string]any {
	claim := map[string]any{
		"accessModes": []any{string(corev1.ReadWriteOnce)},
		"resources":   map[string]any{"requests": map[string]any{"storage": storage}},
	}
	if storageClass != "" {
		claim["storageClassName"] = storageClass
	}
	return claim
}

// volumeClaim renders a Volume's claim, its size written as the data
// volume's is (canonical: 1024Mi is 1Gi).
func volumeClaim(v *v1alpha1.Volume) (map[string]any, error) {
	q, err := resource.ParseQuantity(v.Storage)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return volumeClaimSpec(q.String(), v.StorageClass), nil
}

// backupsSpec renders spec.backups, or nil when backups are disabled.
func backupsSpec(pg *v1alpha1.PostgresSpec) (map[string]any, error) {
	b := pg.Backups
	if !*b.Enabled {
		return nil, nil
	}
	pgbackrest := map[string]any{}
	if b.Image != "" {
		pgbackrest["image"] = b.Image
	}
	if b.CredentialsSecret != "" {
		pgbackrest["configuration"] = []any{map[string]any{"secret": map[string]any{"name": b.CredentialsSecret}}}
	}
	global := map[string]any{}
	for k, v := range b.Global {
		global[k] = v
	}
	repos := make([]any, 0, len(b.Repos))
	hasVolume := false
	for _, r := range b.Repos {
		repo := map[string]any{"name": string(r.Name)}
		switch {
		case r.Volume != nil:
			hasVolume = true
			repo["volume"] = map[string]any{"volumeClaimSpec": volumeClaimSpec(r.Volume.Storage.String(), r.Volume.StorageClass)}
		case r.S3 != nil:
			repo["s3"] = map[string]any{"bucket": r.S3.Bucket, "endpoint": r.S3.Endpoint, "region": r.S3.Region}
		case r.GCS != nil:
			repo["gcs"] = map[string]any{"bucket": r.GCS.Bucket}
		case r.Azure != nil:
			repo["azure"] = map[string]any{"container": r.Azure.Container}
		}
		if s := r.Schedules; s != nil {
			schedules := map[string]any{}
			for key, cron := range map[string]v1alpha1.CronSchedule{"full": s.Full, "differential": s.Differential, "incremental": s.Incremental} {
				if cron != "" {
					schedules[key] = string(cron)
				}
			}
			if len(schedules) > 0 {
				repo["schedules"] = schedules
			}
		}
		for k, v := range repoGlobals(r) {
			global[k] = v
		}
		repos = append(repos, repo)
	}
	pgbackrest["repos"] = repos
	if len(global) > 0 {
		pgbackrest["global"] = global
	}

	// The repo host only exists for volume repositories; backup jobs run
	// whatever the repository.
	if hasVolume {
		repoHost := map[string]any{}
		if err := applyScheduling(repoHost, pg.Scheduling, true); err != nil {
			return nil, fmt.Errorf("spec.postgres.scheduling: %w", err)
		}
		if err := setJSON(repoHost, "resources", b.RepoHostResources); err != nil {
			return nil, fmt.Errorf("spec.postgres.backups.repoHostResources: %w", err)
		}
		if len(repoHost) > 0 {
			pgbackrest["repoHost"] = repoHost
		}
	}
	jobs := map[string]any{}
	if err := applyScheduling(jobs, pg.Scheduling, false); err != nil {
		return nil, fmt.Errorf("spec.postgres.scheduling: %w", err)
	}
	if err := setJSON(jobs, "resources", b.JobResources); err != nil {
		return nil, fmt.Errorf("spec.postgres.backups.jobResources: %w", err)
	}
	if len(jobs) > 0 {
		pgbackrest["jobs"] = jobs
	}

	if r := pg.Restore; r != nil {
		restore := map[string]any{"enabled": true, "repoName": string(r.RepoName)}
		if options := restoreOptions(r.TargetTime, r.Options); len(options) > 0 {
			restore["options"] = options
		}
		pgbackrest["restore"] = restore
	}
	return map[string]any{"pgbackrest": pgbackrest}, nil
}

// repoGlobals are the pgBackRest global keys a repository's typed fields set.
func repoGlobals(r v1alpha1.BackupRepo) map[string]string {
	keys := map[string]string{}
	if r.Path != "" {
		keys[string(r.Name)+"-path"] = r.Path
	}
	if t := r.Retention; t != nil {
		if t.Full != nil {
			keys[string(r.Name)+"-retention-full"] = strconv.Itoa(int(*t.Full))
			fullType := string(t.FullType)
			if fullType == "" {
				fullType = "count"
			}
			keys[string(r.Name)+"-retention-full-type"] = fullType
		}
		if t.Differential != nil {
			keys[string(r.Name)+"-retention-diff"] = strconv.Itoa(int(*t.Differential))
		}
	}
	return keys
}

// restoreOptions turns a target time into pgBackRest's --type/--target pair,
// in UTC so that the output never depends on the machine's time zone.
func restoreOptions(t *metav1.Time, extra []string) []any {
	var options []any
	if t != nil && !t.IsZero() {
		options = append(options, "--type=time", fmt.Sprintf("--target=%q", t.UTC().Format("2006-01-02 15:04:05+00")))
	}
	for _, o := range extra {
		options = append(options, o)
	}
	return options
}

func dataSource(c *v1alpha1.CloneFrom) map[string]any {
	options := restoreOptions(c.TargetTime, c.Options)
	if c.ClusterName != "" {
		source := map[string]any{"clusterName": c.ClusterName, "repoName": string(c.RepoName)}
		if c.ClusterNamespace != "" {
			source["clusterNamespace"] = c.ClusterNamespace
		}
		if len(options) > 0 {
			source["options"] = options
		}
		return map[string]any{"postgresCluster": source}
	}
	repo := map[string]any{"name": string(c.Repo.Name)}
	switch {
	case c.Repo.S3 != nil:
		repo["s3"] = map[string]any{"bucket": c.Repo.S3.Bucket, "endpoint": c.Repo.S3.Endpoint, "region": c.Repo.S3.Region}
	case c.Repo.GCS != nil:
		repo["gcs"] = map[string]any{"bucket": c.Repo.GCS.Bucket}
	case c.Repo.Azure != nil:
		repo["azure"] = map[string]any{"container": c.Repo.Azure.Container}
	}
	stanza := c.Stanza
	if stanza == "" {
		stanza = DefaultStanza
	}
	source := map[string]any{"stanza": stanza, "repo": repo}
	if c.CredentialsSecret != "" {
		source["configuration"] = []any{map[string]any{"secret": map[string]any{"name": c.CredentialsSecret}}}
	}
	if len(c.Global) > 0 {
		global := map[string]any{}
		for k, v := range c.Global {
			global[k] = v
		}
		source["global"] = global
	}
	if len(options) > 0 {
		source["options"] = options
	}
	return map[string]any{"pgbackrest": source}
}

func pgBouncer(p *v1alpha1.Pooler, scheduling *v1alpha1.Scheduling) (map[string]any, error) {
	service, err := serviceSpec(p.ServiceType, p.Service)
	if err != nil {
		return nil, fmt.Errorf("spec.postgres.pooler.service: %w", err)
	}
	bouncer := map[string]any{
		"replicas": int64(*p.Replicas),
		"service":  service,
	}
	if p.Image != "" {
		bouncer["image"] = p.Image
	}
	if c := p.Config; c != nil && (len(c.Global) > 0 || len(c.Databases) > 0 || len(c.Users) > 0) {
		v, err := jsonValue(c)
		if err != nil {
			return nil, fmt.Errorf("spec.postgres.pooler.config: %w", err)
		}
		bouncer["config"] = v
	}
	if err := setJSON(bouncer, "resources", p.Resources); err != nil {
		return nil, fmt.Errorf("spec.postgres.pooler.resources: %w", err)
	}
	if err := applyScheduling(bouncer, scheduling, true); err != nil {
		return nil, fmt.Errorf("spec.postgres.scheduling: %w", err)
	}
	return bouncer, nil
}

// serviceSpec renders one of PGO's Service specs: the type when given and
// the metadata when it holds anything.
func serviceSpec(t v1alpha1.ServiceType, m *v1alpha1.ServiceMetadata) (map[string]any, error) {
	service := map[string]any{}
	if t != "" {
		service["type"] = string(t)
	}
	if err := setJSON(service, "metadata", m); err != nil {
		return nil, err
	}
	return service, nil
}

// applyScheduling writes affinity (with the node selector folded in),
// tolerations, priorityClassName and, where the target supports them,
// topologySpreadConstraints.
func applyScheduling(target map[string]any, s *v1alpha1.Scheduling, spreads bool) error {
	if s == nil {
		return nil
	}
	if err := setJSON(target, "affinity", withNodeSelector(s.Affinity, s.NodeSelector)); err != nil {
		return err
	}
	if err := setJSON(target, "tolerations", s.Tolerations); err != nil {
		return err
	}
	if spreads {
		if err := setJSON(target, "topologySpreadConstraints", s.TopologySpreadConstraints); err != nil {
			return err
		}
	}
	if s.PriorityClassName != "" {
		target["priorityClassName"] = s.PriorityClassName
	}
	return nil
}

// withNodeSelector folds a node selector into affinity. Required node
// selector terms are ORed and the expressions inside one term ANDed, so the
// selector's expressions join every term: a node must match them whichever
// term it satisfies.
func withNodeSelector(affinity *corev1.Affinity, selector map[string]string) *corev1.Affinity {
	if len(selector) == 0 {
		return affinity
	}
	out := affinity.DeepCopy()
	if out == nil {
		out = &corev1.Affinity{}
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	required := out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if required == nil {
		required = &corev1.NodeSelector{}
		out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = required
	}
	if len(required.NodeSelectorTerms) == 0 {
		required.NodeSelectorTerms = []corev1.NodeSelectorTerm{{}}
	}
	keys := make([]string, 0, len(selector))
	for k := range selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i := range required.NodeSelectorTerms {
		for _, k := range keys {
			required.NodeSelectorTerms[i].MatchExpressions = append(required.NodeSelectorTerms[i].MatchExpressions,
				corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{selector[k]}})
		}
	}
	return out
}

// checkRequired makes sure overrides left what PGO cannot do without:
// a version and instance sets with sized, accessible data volumes, whose
// names fit PGO's limit beside the cluster's (overrides may bring sets the
// CRD's rule never saw).
func checkRequired(spec map[string]any, cluster string) error {
	if _, ok := spec["postgresVersion"]; !ok {
		return fmt.Errorf("spec.postgres.overrides removed postgresVersion, which PGO requires")
	}
	instances, ok := spec["instances"].([]any)
	if !ok || len(instances) == 0 {
		return fmt.Errorf("spec.postgres.overrides left no instances, and PGO requires at least one")
	}
	for i, item := range instances {
		set, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("spec.postgres.overrides: instances[%d] is not an object", i)
		}
		modes, _, _ := unstructured.NestedSlice(set, "dataVolumeClaimSpec", "accessModes")
		storage, _, _ := unstructured.NestedFieldNoCopy(set, "dataVolumeClaimSpec", "resources", "requests", "storage")
		if len(modes) == 0 || storage == nil {
			return fmt.Errorf("spec.postgres.overrides: instances[%d] needs dataVolumeClaimSpec with accessModes and resources.requests.storage", i)
		}
		name, _ := set["name"].(string)
		if name == "" {
			name = fmt.Sprintf("%02d", i) // PGO's default set name
		}
		if msg := checkNameLength(cluster, name); msg != "" && cluster != "" {
			return fmt.Errorf("instances[%d].name: %s", i, msg)
		}
	}
	return nil
}

// jsonValue converts a typed value into the JSON-shaped value unstructured
// objects hold (integers as int64), through its JSON encoding.
func jsonValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := utiljson.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// setJSON stores v under key unless it encodes as null, {} or [] (a nil
// pointer, an empty struct or list), so absent settings stay absent.
func setJSON(target map[string]any, key string, v any) error {
	value, err := jsonValue(v)
	if err != nil {
		return err
	}
	switch value := value.(type) {
	case nil:
		return nil
	case map[string]any:
		if len(value) == 0 {
			return nil
		}
	case []any:
		if len(value) == 0 {
			return nil
		}
	}
	target[key] = value
	return nil
}

func stringList(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}
