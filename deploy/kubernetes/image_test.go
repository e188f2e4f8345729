package kubernetes

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string
	args string
}

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatal("the Dockerfile ends inside a continued line")
	}
	return out
}

// TestDockerfile checks the image recipe without a Docker engine (none runs
// here): known instructions, a build stage whose output the final stage
// copies, a static binary of ./cmd/banjia, a numeric non-root user, exec-form
// entrypoint, and a build context that keeps every file the build reads.
func TestDockerfile(t *testing.T) {
	known := map[string]bool{"FROM": true, "ARG": true, "WORKDIR": true, "COPY": true, "RUN": true, "ENV": true,
		"USER": true, "EXPOSE": true, "ENTRYPOINT": true, "CMD": true, "LABEL": true}
	stages := map[string]bool{}
	var froms []string
	var built, copied bool
	args := map[string]bool{}
	for _, in := range dockerfile(t) {
		if !known[in.cmd] {
			t.Errorf("line %d: unknown instruction %q", in.line, in.cmd)
		}
		switch in.cmd {
		case "ARG":
			name, _, _ := strings.Cut(in.args, "=")
			args[name] = true
		case "FROM":
			f := strings.Fields(in.args)
			for _, m := range argRef.FindAllStringSubmatch(in.args, -1) {
				if !args[m[1]] {
					t.Errorf("line %d: FROM uses ${%s}, not declared by an ARG before it", in.line, m[1])
				}
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			} else if len(f) != 1 {
				t.Errorf("line %d: FROM %q", in.line, in.args)
			}
			froms = append(froms, f[0])
		case "RUN":
			if strings.Contains(in.args, "go build") {
				built = true
				if !strings.Contains(in.args, "CGO_ENABLED=0") || !strings.Contains(in.args, "./cmd/banjia") {
					t.Errorf("line %d: the build must be CGO_ENABLED=0 go build ./cmd/banjia (a static binary)", in.line)
				}
			}
		case "COPY":
			if from, ok := strings.CutPrefix(in.args, "--from="); ok {
				stage, _, _ := strings.Cut(from, " ")
				if !stages[stage] {
					t.Errorf("line %d: COPY --from=%s, no such stage", in.line, stage)
				}
				copied = len(froms) > 1
			}
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(in.args), &v); err != nil || len(v) == 0 {
				t.Errorf("line %d: %s %s is not the exec form (a JSON array): signals would go to a shell", in.line, in.cmd, in.args)
			}
		}
	}
	if len(froms) < 2 || !built || !copied {
		t.Errorf("want a multi-stage build: %d stages, go build %v, binary copied into the last stage %v", len(froms), built, copied)
	}
	if last := froms[len(froms)-1]; strings.Contains(last, "golang") {
		t.Errorf("the final stage %s carries the Go toolchain", last)
	}
	if imageUser(t) == 0 {
		t.Error("the image runs as root")
	}

	// Every file go build reads must reach the build context.
	ignore := dockerignore(t)
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, "../../cmd/banjia").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	root, _ := filepath.Abs("../..")
	checked := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], root+string(filepath.Separator)) {
			continue // a module dependency: downloaded in the build
		}
		rel, _ := filepath.Rel(root, f[0])
		for _, name := range f[1:] {
			p := filepath.ToSlash(filepath.Join(rel, name))
			checked++
			if ignored(ignore, p) {
				t.Errorf(".dockerignore leaves out %s, which go build ./cmd/banjia reads", p)
			}
		}
	}
	for _, p := range []string{"go.mod", "go.sum"} {
		if ignored(ignore, p) {
			t.Errorf(".dockerignore leaves out %s", p)
		}
	}
	if checked < 50 {
		t.Errorf("only %d of the build's files were checked against .dockerignore", checked)
	}
	for _, p := range []string{"banjia.db", "x/banjia.db.key", "deploy/kubernetes/overlays/mysite/admin-password", "deploy/kubernetes/overlays/mysite/admin-token", ".git/config"} {
		if !ignored(ignore, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

func dockerignore(t *testing.T) []string {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore exception %q: ignored() does not handle them", l)
		}
		pats = append(pats, l)
	}
	return pats
}

// ignored applies .dockerignore patterns the way Docker does for the forms
// used here: a pattern matches a path or any folder above it, and a leading
// **/ matches at any depth.
func ignored(pats []string, p string) bool {
	parts := strings.Split(p, "/")
	for _, pat := range pats {
		anyDepth := strings.HasPrefix(pat, "**/")
		pat = strings.TrimPrefix(pat, "**/")
		depth := strings.Count(pat, "/") + 1
		for i := 0; i+depth <= len(parts) && (i == 0 || anyDepth); i++ {
			if ok, _ := filepath.Match(pat, strings.Join(parts[i:i+depth], "/")); ok {
				return true
			}
		}
	}
	return false
}
