package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/render"
)

// fileList collects repeated -f flags.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

// runRender prints the PostgresCluster the controller would apply for each
// PostgresStack read from -f files ("-" is stdin), so a person can see and
// review what a stack becomes without a cluster. Nothing is printed unless
// every stack renders: a partial answer would read as a complete one.
func runRender(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "PostgresStack YAML file to render, or - for stdin; repeatable; a file may hold several documents")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pgstack render -f stack.yaml [-f more.yaml ...]\n\nPrints the PostgresCluster YAML pgstack applies for each PostgresStack.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("render: unexpected arguments %q: name files with -f", fs.Args())
	}
	if len(files) == 0 {
		return fmt.Errorf("render: no input: pass -f stack.yaml, or -f - to read stdin")
	}

	var stacks []*v1alpha1.PostgresStack
	for _, name := range files {
		read, err := readStacks(name, stdin)
		if err != nil {
			return err
		}
		stacks = append(stacks, read...)
	}
	if len(stacks) == 0 {
		return fmt.Errorf("render: no PostgresStack in %s", files.String())
	}

	var out strings.Builder
	for i, stack := range stacks {
		cluster, err := render.Render(stack)
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		text, err := yaml.Marshal(cluster.Object)
		if err != nil {
			return fmt.Errorf("render: encode PostgresCluster %q: %w", cluster.GetName(), err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(text)
	}
	_, err := io.WriteString(stdout, out.String())
	return err
}

func readStacks(name string, stdin io.Reader) ([]*v1alpha1.PostgresStack, error) {
	source, in := name, stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		defer f.Close()
		in = f
	} else {
		source = "stdin"
	}
	stacks, err := render.DecodeStacks(in)
	if err != nil {
		return nil, fmt.Errorf("render: %s: %w", source, err)
	}
	return stacks, nil
}
