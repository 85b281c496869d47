// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status)
// computes for Kubernetes objects, so the tests can judge live ModelDeployments
// the way Flux does.
//
// Why it exists: Flux's health checks (a Kustomization's `wait: true`,
// `healthChecks`) are kstatus. The README promises Flux sees Progressing and
// Paused as InProgress, Degraded as Failed and Healthy as Current; only the
// library itself can keep that promise honest, so
// tests/integration/test_gitops.py pipes the objects it reads from the API
// server through this binary instead of a copy of kstatus's rules. (Flux builds
// against its fork, github.com/fluxcd/cli-utils; the fork's pkg/kstatus/status
// is this code with other import paths.)
//
// Input (stdin): one object as JSON, or a List of them (`kubectl get -o json`).
// Output (stdout): one JSON line per object, in order:
//
//	{"name":"fraud","status":"InProgress","message":"..."}
//
// status is status.Compute's: InProgress, Current, Failed or Terminating. The
// exit code is 0 whatever the statuses; 1 when the input cannot be read or
// kstatus returns an error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// Unstructured's own decoder, not encoding/json into a map: it keeps integers
	// as int64, which kstatus needs to compare generation and observedGeneration.
	var read unstructured.Unstructured
	if err := read.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("reading an object or a List from stdin: %w", err)
	}
	objects := []*unstructured.Unstructured{&read}
	if read.IsList() {
		objects = nil
		err := read.EachListItem(func(item runtime.Object) error {
			objects = append(objects, item.(*unstructured.Unstructured))
			return nil
		})
		if err != nil {
			return err
		}
	}
	encoder := json.NewEncoder(out)
	for _, object := range objects {
		result, err := status.Compute(object)
		if err != nil {
			return fmt.Errorf("%s %q: %w", object.GetKind(), object.GetName(), err)
		}
		if err := encoder.Encode(line{object.GetName(), string(result.Status), result.Message}); err != nil {
			return err
		}
	}
	return nil
}
