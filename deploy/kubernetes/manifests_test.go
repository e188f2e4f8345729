// Package kubernetes holds banjia's Kubernetes manifests (a kustomize base,
// components and overlays) and the test that renders and checks them. The
// test lives here so that the Kubernetes API types it needs are compiled for
// this package alone.
package kubernetes

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The contract between the manifests and the binary (docs/scale-out.md).
var (
	shardArgs  = []string{"--state", "$(BANJIA_STATE)", "job", "start", "$(BANJIA_JOB)"}
	stateDir   = "/var/lib/banjia/shards"
	controlDir = "/var/lib/banjia/control"
)

// secretFiles are the files an overlay's secretGenerator reads and that are
// kept out of version control; the test supplies stand-ins.
var secretFiles = map[string]string{
	"banjia.db.key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
	"admin-token":   "not-a-real-token\n",
}

// serviceMonitor is the part of the Prometheus Operator's type that the
// component uses; decoding strictly into it catches a misspelt field without
// bringing in the operator's module.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// podMonitor is the part of the Prometheus Operator's PodMonitor that the
// component uses, decoded strictly like serviceMonitor.
type podMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// rendered is one kustomization's output, decoded into the API types.
type rendered struct {
	jobs        []*batchv1.Job
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pvcs        []*corev1.PersistentVolumeClaim
	secrets     []*corev1.Secret
	configMaps  []*corev1.ConfigMap
	namespaces  []*corev1.Namespace
	monitors    []*serviceMonitor
	podMonitors []*podMonitor
}

// render builds a kustomization from a copy of this folder held in memory,
// with stand-ins for the secret files an overlay expects beside it.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k", p), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every overlay, as one overlay may build on another.
	for _, o := range kustomizations(t)[1:] {
		for name, content := range secretFiles {
			p := filepath.Join("/k", o, name)
			if !mem.Exists(p) {
				if err := mem.WriteFile(p, []byte(content)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/k", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := &rendered{}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if err := out.add(b); err != nil {
			t.Errorf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return out
}

// add decodes one document into its API type, refusing unknown fields and
// kinds nobody checks.
func (r *rendered) add(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	var obj any
	switch head.APIVersion + " " + head.Kind {
	case "batch/v1 Job":
		o := &batchv1.Job{}
		r.jobs, obj = append(r.jobs, o), o
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		r.deployments, obj = append(r.deployments, o), o
	case "v1 Service":
		o := &corev1.Service{}
		r.services, obj = append(r.services, o), o
	case "v1 PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		r.pvcs, obj = append(r.pvcs, o), o
	case "v1 Secret":
		o := &corev1.Secret{}
		r.secrets, obj = append(r.secrets, o), o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		r.configMaps, obj = append(r.configMaps, o), o
	case "v1 Namespace":
		o := &corev1.Namespace{}
		r.namespaces, obj = append(r.namespaces, o), o
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &serviceMonitor{}
		r.monitors, obj = append(r.monitors, o), o
	case "monitoring.coreos.com/v1 PodMonitor":
		o := &podMonitor{}
		r.podMonitors, obj = append(r.podMonitors, o), o
	default:
		return fmt.Errorf("kind %s %s has no check in manifests_test.go", head.APIVersion, head.Kind)
	}
	return yaml.UnmarshalStrict(doc, obj)
}

func (r *rendered) configMap(name string) *corev1.ConfigMap {
	for _, c := range r.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r *rendered) secret(name string) *corev1.Secret {
	for _, s := range r.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func kustomizations(t *testing.T) []string {
	dirs := []string{"base"}
	overlays, err := filepath.Glob("overlays/*/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range overlays {
		dirs = append(dirs, filepath.Dir(k))
	}
	if len(dirs) < 2 {
		t.Fatal("no overlay found under overlays/")
	}
	return dirs
}

// TestManifestsRenderAndValidate builds the base and every overlay, decodes
// each object strictly into the Kubernetes API types and checks what a
// sharded run depends on.
func TestManifestsRenderAndValidate(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			r := render(t, dir)
			if len(r.jobs) != 1 || len(r.deployments) != 1 || len(r.services) != 1 || len(r.pvcs) != 1 {
				t.Fatalf("want one Job, Deployment, Service and PVC, got %d, %d, %d, %d",
					len(r.jobs), len(r.deployments), len(r.services), len(r.pvcs))
			}
			overlay := dir != "base"
			r.checkNames(t)
			checkJob(t, r, r.jobs[0], overlay)
			checkDashboard(t, r, overlay)
			if overlay && len(r.namespaces) == 1 {
				for _, j := range r.jobs {
					if j.Namespace != r.namespaces[0].Name {
						t.Errorf("Job in namespace %q, overlay creates %q", j.Namespace, r.namespaces[0].Name)
					}
				}
			}
		})
	}
}

func checkJob(t *testing.T, r *rendered, j *batchv1.Job, overlay bool) {
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Error("completionMode must be Indexed: each pod needs its stable shard index")
	}
	if s.Completions == nil || s.Parallelism == nil {
		t.Fatal("completions and parallelism must both be set to the shard count")
	}
	n := int(*s.Completions)
	if n < 1 || *s.Parallelism < 1 || *s.Parallelism > *s.Completions {
		t.Errorf("parallelism %d, completions %d: want 1 <= parallelism <= completions", *s.Parallelism, n)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex < 1 {
		t.Error("backoffLimitPerIndex must be set: a crashing shard retries on its own state and fails alone")
	}
	if s.PodReplacementPolicy == nil || *s.PodReplacementPolicy != batchv1.Failed {
		t.Error("podReplacementPolicy must be Failed: two pods of one index must never run at once")
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q: podFailurePolicy needs Never", s.Template.Spec.RestartPolicy)
	}
	checkFailurePolicy(t, j)
	spread := s.Template.Spec.TopologySpreadConstraints
	if len(spread) == 0 {
		t.Error("no topologySpreadConstraints: all shards may land on one node and share its network")
	}
	for _, c := range spread {
		if c.LabelSelector == nil || !subset(c.LabelSelector.MatchLabels, s.Template.Labels) {
			t.Errorf("a spread constraint selects %v, not the shards' pods %v: it spreads nothing", c.LabelSelector, s.Template.Labels)
		}
	}
	checkSecurity(t, "Job", s.Template.Spec)

	shard := container(s.Template.Spec.Containers, "banjia")
	seed := container(s.Template.Spec.InitContainers, "seed")
	if shard == nil || seed == nil {
		t.Fatal("the Job needs the init container seed and the container banjia")
	}
	if shard.Image != seed.Image {
		t.Errorf("seed runs %q, banjia %q: one image for both", seed.Image, shard.Image)
	}
	if !shardCommand(shard.Args) {
		t.Errorf("args %q, want %q with only flags (--name=value) added before the job's name", shard.Args, shardArgs)
	}
	env := podEnv(t, r, shard, overlay)
	if !secretEnv(shard, "BANJIA_STATE_KEY", "banjia-state-key") {
		t.Error("banjia: no BANJIA_STATE_KEY from the Secret banjia-state-key: the shards' sealed passwords could not be opened")
	}
	checkPerHost(t, r, shard, n)
	checkControl(t, r, shard)
	checkShardMetrics(t, r, j, shard)
	if got := env["BANJIA_SHARDS"]; got != fmt.Sprint(n) {
		t.Errorf("BANJIA_SHARDS = %q, completions = %d: a shard would pick its accounts from the wrong count", got, n)
	}
	if env["BANJIA_JOB"] == "" {
		t.Error("BANJIA_JOB is empty")
	}
	if seedEnv := podEnv(t, r, seed, overlay); seedEnv["BANJIA_SHARDS"] != env["BANJIA_SHARDS"] {
		t.Errorf("seed sees BANJIA_SHARDS %q, banjia %q", seedEnv["BANJIA_SHARDS"], env["BANJIA_SHARDS"])
	}
	for i := range 3 {
		state := expand(r, shard, "$(BANJIA_STATE)", map[string]string{"JOB_COMPLETION_INDEX": fmt.Sprint(i)})
		if want := fmt.Sprintf("%s/shard-%d.db", stateDir, i); state != want {
			t.Errorf("index %d: state file %q, want %q (the name export-shards gives it)", i, state, want)
		}
	}
	claim := r.pvcs[0].Name
	for _, c := range []*corev1.Container{shard, seed} {
		if mountOf(s.Template.Spec, c, "/var/lib/banjia") != claim {
			t.Errorf("%s does not mount the claim %s at /var/lib/banjia", c.Name, claim)
		}
	}
	if !slices.Contains(r.pvcs[0].Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("claim %s %v: the shards on several nodes share it, it must be ReadWriteMany", claim, r.pvcs[0].Spec.AccessModes)
	}
}

// checkPerHost: --per-host is the whole job's limit, shared among the
// shards, and a shard needs two connections (one lists, one copies), so
// job start refuses a limit below twice the shard count. The default (10)
// would be refused by any job of more than 5 shards, so it must be given,
// once, and (one pod template for every index) the same for every pod.
func checkPerHost(t *testing.T, r *rendered, shard *corev1.Container, n int) {
	var given []string
	for _, a := range shard.Args {
		if a == "--per-host" || strings.HasPrefix(a, "--per-host=") {
			given = append(given, a)
		}
	}
	if len(given) != 1 {
		t.Errorf("args %q: want --per-host=L exactly once (the default 10 is refused for more than 5 shards)", shard.Args)
		return
	}
	seen := map[string]bool{}
	for i := range n {
		got := expand(r, shard, flag(shard.Args, "--per-host"), map[string]string{"JOB_COMPLETION_INDEX": fmt.Sprint(i)})
		seen[got] = true
		l, err := strconv.Atoi(got)
		if err != nil {
			t.Errorf("index %d: --per-host %q is not a number", i, got)
			continue
		}
		if l < 2*n {
			t.Errorf("index %d: --per-host %d for %d shards: job start refuses it (each shard needs 2, give %d or more)", i, l, n, 2*n)
		}
	}
	if len(seen) > 1 {
		t.Errorf("the shards get different --per-host values %v: the job's limit must be one number", seen)
	}
}

// checkControl: every shard watches one order file and publishes its status
// beside it, in a folder of the shared claim that holds no state file (the
// readers of that folder would otherwise open the files running shards hold).
func checkControl(t *testing.T, r *rendered, shard *corev1.Container) {
	f := expand(r, shard, "$(BANJIA_CONTROL_FILE)", map[string]string{"JOB_COMPLETION_INDEX": "0"})
	if want := controlDir + "/control.json"; f != want {
		t.Errorf("BANJIA_CONTROL_FILE %q, want %q: without it each shard watches control.json beside its own state file", f, want)
	}
	if controlDir == stateDir || strings.HasPrefix(stateDir+"/", controlDir+"/") {
		t.Errorf("the control folder %s holds the state files %s", controlDir, stateDir)
	}
	if flag(shard.Args, "--control-file") != "" {
		t.Errorf("args %q set --control-file too: one order file, from BANJIA_CONTROL_FILE", shard.Args)
	}
}

// checkShardMetrics: the shard serves /metrics on the port it names, probes
// use it, and the PodMonitor scrapes that port on the shards' pods only.
func checkShardMetrics(t *testing.T, r *rendered, j *batchv1.Job, shard *corev1.Container) {
	listen := expand(r, shard, "$(BANJIA_METRICS_LISTEN)", nil)
	_, port, ok := strings.Cut(listen, ":")
	num, err := strconv.Atoi(port)
	if !ok || err != nil {
		t.Errorf("BANJIA_METRICS_LISTEN %q: want [HOST]:PORT", listen)
	}
	named := ""
	for _, p := range shard.Ports {
		if int(p.ContainerPort) == num {
			named = p.Name
		}
	}
	if named == "" {
		t.Errorf("the shard listens for /metrics on %d but declares no port for it: %v", num, shard.Ports)
	}
	if pr := shard.ReadinessProbe; pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz" || pr.HTTPGet.Port.String() != named {
		t.Errorf("the shard's readiness probe %+v: want GET /healthz on port %q", pr, named)
	}
	for _, m := range r.podMonitors {
		if !subset(m.Spec.Selector.MatchLabels, j.Spec.Template.Labels) {
			t.Errorf("PodMonitor selects %v, the shards' pods have %v", m.Spec.Selector.MatchLabels, j.Spec.Template.Labels)
		}
		for _, d := range r.deployments {
			if subset(m.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Error("the PodMonitor also selects the dashboard's pods, which serve no /metrics")
			}
		}
		if len(m.Spec.PodMetricsEndpoints) == 0 {
			t.Error("the PodMonitor scrapes no endpoint")
		}
		for _, e := range m.Spec.PodMetricsEndpoints {
			if e.Port != named || e.Path != "/metrics" {
				t.Errorf("PodMonitor scrapes port %q path %q; the shard serves /metrics on port %q", e.Port, e.Path, named)
			}
		}
	}
	if len(r.monitors) > 0 {
		t.Error("a ServiceMonitor: serve --shards has no /metrics to scrape, the shards have (PodMonitor)")
	}
}

// secretEnv: c takes env name from a key of the Secret secret (in an
// overlay, the generated name: secret and a hash of its content).
func secretEnv(c *corev1.Container, name, secret string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && strings.HasPrefix(e.ValueFrom.SecretKeyRef.Name, secret) {
			return true
		}
	}
	return false
}

// checkFailurePolicy: the rules name real containers, and a finished shard
// with failures (exit 2, 3) is not run again while an interruption is.
func checkFailurePolicy(t *testing.T, j *batchv1.Job) {
	p := j.Spec.PodFailurePolicy
	if p == nil {
		t.Fatal("no podFailurePolicy")
	}
	outcome := map[int32]batchv1.PodFailurePolicyAction{}
	ignoresDisruption := false
	for _, rule := range p.Rules {
		if rule.Action == batchv1.PodFailurePolicyActionFailIndex && j.Spec.BackoffLimitPerIndex == nil {
			t.Error("FailIndex needs backoffLimitPerIndex")
		}
		for _, c := range rule.OnPodConditions {
			if c.Type == corev1.DisruptionTarget && rule.Action == batchv1.PodFailurePolicyActionIgnore {
				ignoresDisruption = true
			}
		}
		e := rule.OnExitCodes
		if e == nil {
			continue
		}
		if e.ContainerName == nil {
			t.Error("an exit-code rule without containerName also matches the seed step")
			continue
		}
		spec := j.Spec.Template.Spec
		if container(spec.Containers, *e.ContainerName) == nil && container(spec.InitContainers, *e.ContainerName) == nil {
			t.Errorf("podFailurePolicy names container %q, which the pod does not have", *e.ContainerName)
		}
		if *e.ContainerName == "banjia" && e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
			for _, v := range e.Values {
				outcome[v] = rule.Action
			}
		}
	}
	if !ignoresDisruption {
		t.Error("evictions and drains (DisruptionTarget) should not count against a shard")
	}
	for _, code := range []int32{2, 3} {
		if outcome[code] != batchv1.PodFailurePolicyActionFailIndex {
			t.Errorf("exit %d is final (see banjia job start --help) but the policy gives %q", code, outcome[code])
		}
	}
	if a, ok := outcome[4]; ok {
		t.Errorf("exit 4 (interrupted) must be retried on the shard's state, policy gives %q", a)
	}
}

func checkDashboard(t *testing.T, r *rendered, overlay bool) {
	d := r.deployments[0]
	spec := d.Spec.Template.Spec
	checkSecurity(t, "Deployment", spec)
	c := container(spec.Containers, "banjia")
	if c == nil {
		t.Fatal("the dashboard has no container banjia")
	}
	// The shards' statuses, not their state files: those are held by the
	// running shards, and the merged view would fail on each of them.
	if len(c.Args) == 0 || c.Args[0] != "serve" || flag(c.Args, "--shards") != controlDir || flag(c.Args, "--listen") == "" {
		t.Errorf("dashboard args %q: want serve --shards %s --listen ADDR", c.Args, controlDir)
	}
	// serve --shards refuses to start without the API token.
	if p := flag(c.Args, "--admin-token-file"); p != "" {
		if !mountedFromSecret(spec, c, p, "banjia-dashboard") {
			t.Errorf("--admin-token-file %s is not in a mount of the Secret banjia-dashboard", p)
		}
	} else if !secretEnv(c, "BANJIA_ADMIN_TOKEN", "banjia-dashboard") {
		t.Error("the dashboard has no BANJIA_ADMIN_TOKEN from the Secret banjia-dashboard: serve --shards refuses to start without it")
	}
	if pr := c.ReadinessProbe; pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz" {
		t.Errorf("the dashboard's readiness probe %+v: want GET /healthz, the only path without the token", pr)
	}
	if mountOf(spec, c, "/var/lib/banjia") != r.pvcs[0].Name {
		t.Error("the dashboard does not mount the shards' claim")
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/lib/banjia" && !m.ReadOnly {
			t.Error("the dashboard mounts the shards' volume read-write: each state file has one writer, its shard")
		}
	}
	podEnv(t, r, c, overlay)
	if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("the Deployment's selector does not match its pods")
	}

	svc := r.services[0]
	if !subset(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service selector %v does not select the dashboard's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if subset(svc.Spec.Selector, r.jobs[0].Spec.Template.Labels) {
		t.Error("the dashboard Service also selects the shards' pods")
	}
	ports := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = true
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
			t.Errorf("Service port %s targets %s, which the container does not name", p.Name, p.TargetPort.String())
		}
	}
	if len(ports) == 0 {
		t.Error("the dashboard Service has no port")
	}
}

// checkSecurity: banjia needs no root, no privilege and no writable image,
// and every container says what it needs so the scheduler can place it.
func checkSecurity(t *testing.T, what string, spec corev1.PodSpec) {
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		t.Errorf("%s: the pod must set runAsNonRoot and a non-zero runAsUser", what)
	} else if *ps.RunAsUser != imageUser(t) {
		t.Errorf("%s runs as %d, the Dockerfile's user is %d", what, *ps.RunAsUser, imageUser(t))
	}
	if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: want seccompProfile RuntimeDefault (the restricted Pod Security Standard)", what)
	}
	checkPodStructure(t, what, spec)
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s/%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem, capabilities dropped", what, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: want cpu and memory requests and a memory limit", what, c.Name)
		}
	}
}

// podEnv resolves a container's environment as the kubelet would, from its
// envFrom ConfigMaps and literal values. In an overlay every ConfigMap and
// Secret a container refers to must be rendered with it.
func podEnv(t *testing.T, r *rendered, c *corev1.Container, overlay bool) map[string]string {
	env := map[string]string{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef == nil {
			continue
		}
		cm := r.configMap(f.ConfigMapRef.Name)
		if cm == nil {
			t.Errorf("%s: ConfigMap %s is not rendered", c.Name, f.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && overlay {
			ref := e.ValueFrom.SecretKeyRef
			s := r.secret(ref.Name)
			if s == nil {
				t.Errorf("%s: %s comes from Secret %s, which the overlay does not make", c.Name, e.Name, ref.Name)
			} else if _, ok := s.Data[ref.Key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", c.Name, ref.Name, ref.Key)
			}
		}
		if e.Value != "" {
			env[e.Name] = e.Value
		}
	}
	return env
}

// expand applies the kubelet's $(VAR) expansion to s, as for args: the
// container's envFrom values, then its env in order, each value seeing only
// the variables before it. fromPod gives the values of variables the pod
// fills in (valueFrom), at their place in the list. $$ stands for $.
func expand(r *rendered, c *corev1.Container, s string, fromPod map[string]string) string {
	vars := map[string]string{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil {
			if cm := r.configMap(f.ConfigMapRef.Name); cm != nil {
				for k, v := range cm.Data {
					vars[k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			if v, ok := fromPod[e.Name]; ok {
				vars[e.Name] = v
			}
			continue
		}
		vars[e.Name] = expandWith(e.Value, vars)
	}
	return expandWith(s, vars)
}

func expandWith(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// shardCommand: the contract's command, with `job start` flags in one
// word each (--parallel=6) before the job's name, where the CLI reads them.
func shardCommand(args []string) bool {
	head, tail := shardArgs[:len(shardArgs)-1], shardArgs[len(shardArgs)-1]
	if len(args) < len(shardArgs) || !slices.Equal(args[:len(head)], head) || args[len(args)-1] != tail {
		return false
	}
	for _, a := range args[len(head) : len(args)-1] {
		if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") {
			return false
		}
	}
	return true
}

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// mountOf is the claim mounted at path in c, or "".
func mountOf(spec corev1.PodSpec, c *corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	return ""
}

func mountedFromSecret(spec corev1.PodSpec, c *corev1.Container, file, secret string) bool {
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && strings.Contains(v.Secret.SecretName, secret) {
				return true
			}
		}
	}
	return false
}

func flag(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// imageUser is the numeric user the Dockerfile's final stage runs as.
func imageUser(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var user string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "USER "); ok {
			user = u
		}
	}
	var uid int64
	if _, err := fmt.Sscanf(user, "%d", &uid); err != nil {
		t.Fatalf("the Dockerfile's USER %q is not numeric: runAsNonRoot cannot check a name", user)
	}
	return uid
}

// TestSeedStep runs the Job's init script, as the kubelet hands it to sh, on
// a scratch folder: it places shard i's exported file once, keeps a state
// file that is already there (a restarted pod resumes on its own state) and
// refuses a seed whose shard count differs from the Job's.
func TestSeedStep(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	r := render(t, "base")
	spec := r.jobs[0].Spec.Template.Spec
	seed := container(spec.InitContainers, "seed")
	script := expand(r, seed, strings.Join(seed.Args, " "), nil)
	n := int(*r.jobs[0].Spec.Completions)

	root := t.TempDir()
	script = strings.ReplaceAll(script, "/var/lib/banjia", root)
	run := func(index int, shards int) (string, error) {
		cmd := exec.Command(sh, "-c", script)
		cmd.Env = []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", index), fmt.Sprintf("BANJIA_SHARDS=%d", shards), "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	seedDir := filepath.Join(root, "seed")
	if err := os.Mkdir(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(seedDir, fmt.Sprintf("shard-%d.db", i)), []byte(fmt.Sprintf("exported %d", i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if out, err := run(3, n); err != nil {
		t.Fatalf("first start of index 3: %v\n%s", err, out)
	}
	placed := filepath.Join(root, "shards", "shard-3.db")
	if b, err := os.ReadFile(placed); err != nil || string(b) != "exported 3" {
		t.Fatalf("index 3's state file holds %q (%v), want the exported shard 3", b, err)
	}
	// The shards publish their statuses there from their first seconds, and
	// cannot create it on a volume where they run without root.
	if fi, err := os.Stat(filepath.Join(root, "control")); err != nil || !fi.IsDir() {
		t.Errorf("the seed step did not make the control folder: %v", err)
	}
	// The shard has run: its state file now differs from the export.
	if err := os.WriteFile(placed, []byte("checkpoints of shard 3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(3, n); err != nil || !strings.Contains(out, "resuming") {
		t.Fatalf("restart of index 3: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(placed); string(b) != "checkpoints of shard 3" {
		t.Fatalf("a restart replaced the shard's state with %q: its progress would be lost", b)
	}
	if _, err := os.Stat(placed + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("a temporary copy was left behind: %v", err)
	}

	for _, shards := range []int{n - 1, n + 1} {
		out, err := run(0, shards)
		if err == nil || !strings.Contains(out, "must hold exactly") {
			t.Errorf("seed of %d shards with BANJIA_SHARDS=%d: err %v, output %q; want a refusal", n, shards, err, out)
		}
		if _, err := os.Stat(filepath.Join(root, "shards", "shard-0.db")); !os.IsNotExist(err) {
			t.Fatalf("a refused seed still placed shard 0")
		}
	}
}

// TestSeedLoader checks the one-off pod that copies the exported shards in:
// it mounts the same claim, runs as the image's user, and uses the image
// the example overlay deploys.
func TestSeedLoader(t *testing.T) {
	b, err := os.ReadFile("seed-loader.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Kind != "Pod" || pod.APIVersion != "v1" {
		t.Fatalf("seed-loader.yaml is %s %s", pod.APIVersion, pod.Kind)
	}
	checkSecurity(t, "seed loader", pod.Spec)
	c := &pod.Spec.Containers[0]
	if mountOf(pod.Spec, c, "/var/lib/banjia") != "banjia-data" {
		t.Error("the loader does not mount banjia-data at /var/lib/banjia")
	}
	ex := render(t, "overlays/example")
	if img := container(ex.jobs[0].Spec.Template.Spec.Containers, "banjia").Image; img != c.Image {
		t.Errorf("loader image %q, the example overlay deploys %q", c.Image, img)
	}
}

// checkNames applies the API server's rules for names, labels and keys,
// which decoding into the types does not: an object that breaks them is
// refused at apply time.
func (r *rendered) checkNames(t *testing.T) {
	type meta struct {
		kind   string
		name   string
		labels map[string]string
	}
	var all []meta
	for _, o := range r.jobs {
		all = append(all, meta{"Job", o.Name, o.Labels}, meta{"Job pod template", "", o.Spec.Template.Labels})
	}
	for _, o := range r.deployments {
		all = append(all, meta{"Deployment", o.Name, o.Labels}, meta{"Deployment pod template", "", o.Spec.Template.Labels})
	}
	for _, o := range r.services {
		all = append(all, meta{"Service", o.Name, o.Labels})
		if errs := validation.IsDNS1035Label(o.Name); len(errs) > 0 {
			t.Errorf("Service name %q: %v", o.Name, errs)
		}
	}
	for _, o := range r.pvcs {
		all = append(all, meta{"PersistentVolumeClaim", o.Name, o.Labels})
	}
	for _, o := range r.namespaces {
		all = append(all, meta{"Namespace", o.Name, o.Labels})
		if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 {
			t.Errorf("Namespace name %q: %v", o.Name, errs)
		}
	}
	for _, o := range r.secrets {
		all = append(all, meta{"Secret", o.Name, o.Labels})
		for k := range o.Data {
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				t.Errorf("Secret %s key %q: %v", o.Name, k, errs)
			}
		}
	}
	for _, o := range r.configMaps {
		all = append(all, meta{"ConfigMap", o.Name, o.Labels})
		for k := range o.Data {
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				t.Errorf("ConfigMap %s key %q: %v", o.Name, k, errs)
			}
		}
	}
	for _, o := range r.monitors {
		all = append(all, meta{"ServiceMonitor", o.Metadata.Name, o.Metadata.Labels})
	}
	for _, o := range r.podMonitors {
		all = append(all, meta{"PodMonitor", o.Metadata.Name, o.Metadata.Labels})
	}
	for _, m := range all {
		if errs := validation.IsDNS1123Subdomain(m.name); m.name != "" && len(errs) > 0 {
			t.Errorf("%s name %q: %v", m.kind, m.name, errs)
		}
		for k, v := range m.labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s %s label %s=%s: %v", m.kind, m.name, k, v, errs)
			}
		}
	}
}

// checkPodStructure: what the API server checks inside a pod spec and the
// types cannot say: valid and unique names, mounts of declared volumes,
// probes on declared ports.
func checkPodStructure(t *testing.T, what string, spec corev1.PodSpec) {
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 || volumes[v.Name] {
			t.Errorf("%s: volume name %q invalid or repeated %v", what, v.Name, errs)
		}
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 || names[c.Name] {
			t.Errorf("%s: container name %q invalid or repeated %v", what, c.Name, errs)
		}
		names[c.Name] = true
		if c.Image == "" {
			t.Errorf("%s/%s: no image", what, c.Name)
		}
		for _, e := range c.Env {
			if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
				t.Errorf("%s/%s: env %q: %v", what, c.Name, e.Name, errs)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s/%s mounts volume %q, which the pod does not declare", what, c.Name, m.Name)
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if errs := append(validation.IsValidPortName(p.Name), validation.IsValidPortNum(int(p.ContainerPort))...); len(errs) > 0 {
				t.Errorf("%s/%s: port %s %d: %v", what, c.Name, p.Name, p.ContainerPort, errs)
			}
			ports[p.Name] = true
		}
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
				t.Errorf("%s/%s: a probe uses port %q, which the container does not name", what, c.Name, pr.HTTPGet.Port.StrVal)
			}
		}
	}
}

// TestKubectlKustomize renders the base and every overlay with the
// kustomize built into kubectl, the one operators run (`kubectl apply -k`),
// when kubectl is installed: it must accept every field the library does and
// give the same objects.
func TestKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("SKIPPED: kubectl is not installed; the manifests were rendered with the kustomize library only")
	}
	// The manifests need kustomize v5 (kubectl 1.27 and later), as
	// docs/scale-out.md says; an older kubectl is not what they are for.
	v, _ := exec.Command(kubectl, "version", "--client").Output()
	if !strings.Contains(string(v), "Kustomize Version: v5") {
		t.Skipf("SKIPPED: kubectl's kustomize is not v5:\n%s", v)
	}
	tmp := t.TempDir()
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range kustomizations(t)[1:] {
		for name, content := range secretFiles {
			if err := os.WriteFile(filepath.Join(tmp, dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, dir := range kustomizations(t) {
		out, err := exec.Command(kubectl, "kustomize", filepath.Join(tmp, dir)).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		got := &rendered{}
		var kinds []string
		for _, doc := range strings.Split(string(out), "\n---\n") {
			if err := got.add([]byte(doc)); err != nil {
				t.Errorf("%s: %v", dir, err)
			}
			var m struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, m.Kind+"/"+m.Metadata.Name)
		}
		want := render(t, dir)
		if len(got.jobs) != 1 || len(got.deployments) != len(want.deployments) || len(got.secrets) != len(want.secrets) ||
			len(got.configMaps) != len(want.configMaps) || len(got.monitors) != len(want.monitors) ||
			len(got.podMonitors) != len(want.podMonitors) {
			t.Errorf("%s: kubectl renders %v, unlike the library", dir, kinds)
			continue
		}
		j, w := got.jobs[0], want.jobs[0]
		if *j.Spec.Completions != *w.Spec.Completions || j.Spec.Template.Spec.Containers[0].Image != w.Spec.Template.Spec.Containers[0].Image ||
			j.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name != w.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name {
			t.Errorf("%s: kubectl's Job differs from the library's", dir)
		}
	}
}
