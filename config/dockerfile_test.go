package config_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the main module's path; only its own files need copying, the
// builder downloads the rest.
const module = "github.com/pgstack/pgstack"

// TestDockerfileCopiesEverythingTheManagerBuildsFrom asks the go tool which
// files of this module the manager binary compiles, and checks that the
// Dockerfile's builder stage copies each of them and .dockerignore keeps none
// of them out: a new top-level file or package then breaks this test, not the
// image build in a release pipeline.
func TestDockerfileCopiesEverythingTheManagerBuildsFrom(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "`+module+`"}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, ".")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list the manager's packages: %v", err)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		dir, err := filepath.Rel(root, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range slices.Concat(strings.Split(parts[1], ","), strings.Split(parts[2], ",")) {
			if name != "" {
				files = append(files, filepath.ToSlash(filepath.Join(dir, name)))
			}
		}
	}
	if !slices.Contains(files, "main.go") || !slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, "controllers/") }) {
		t.Fatalf("go list found %v: not the manager's files", files)
	}
	files = append(files, "go.mod", "go.sum")

	sources, finalStage := dockerfile(t, filepath.Join(root, "Dockerfile"))
	ignored := dockerignore(t, filepath.Join(root, ".dockerignore"))
	for _, f := range files {
		if !slices.ContainsFunc(sources, func(src string) bool { return copies(src, f) }) {
			t.Errorf("the Dockerfile does not copy %s, which the manager is built from (COPY sources: %v)", f, sources)
		}
		for _, pattern := range ignored {
			if copies(pattern, f) {
				t.Errorf(".dockerignore pattern %q keeps %s out of the build context", pattern, f)
			}
		}
	}

	// What ships: a static binary on distroless, run as a numeric non-root user.
	for _, want := range []string{"FROM gcr.io/distroless/static:nonroot", "USER 65532:65532", `ENTRYPOINT ["/manager"]`} {
		if !slices.Contains(finalStage, want) {
			t.Errorf("the Dockerfile's final stage lacks %q: %q", want, finalStage)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "CGO_ENABLED=0") {
		t.Error("the Dockerfile does not build with CGO_ENABLED=0: the binary would need a libc distroless/static lacks")
	}
}

// dockerfile returns the sources of the builder stages' COPY instructions
// and the instructions of the final stage.
func dockerfile(t *testing.T, path string) (sources, finalStage []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			finalStage = nil
		}
		finalStage = append(finalStage, line)
		fields := strings.Fields(line)
		if fields[0] == "COPY" && !strings.HasPrefix(fields[1], "--from") && len(fields) >= 3 {
			sources = append(sources, fields[1:len(fields)-1]...)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return sources, finalStage
}

func dockerignore(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "!") {
			patterns = append(patterns, line)
		}
	}
	return patterns
}

// copies reports whether a COPY source (or .dockerignore pattern) covers a
// file: a directory covers everything under it, a glob the files it matches.
func copies(source, file string) bool {
	source = strings.TrimPrefix(source, "./")
	if dir := strings.TrimSuffix(source, "/"); file == dir || strings.HasPrefix(file, dir+"/") {
		return true
	}
	ok, err := filepath.Match(source, file)
	return err == nil && ok
}
