// helm-render (Helm 3): renders charts with Helm's own packages, for berth's
// differential tests (tests/tools/build-test-servers.sh builds it; the
// helm-compat harness drives it). The v4 program beside this one differs
// only in its import paths.
//
// Reads one JSON request per line on stdin and writes one JSON answer per
// line on stdout:
//
//	{"files": {"Chart.yaml": "<base64>", ...}, "values": "<YAML>",
//	 "set": ["a=1"], "release": "r", "namespace": "ns", "kube_version": ""}
//	{"templates": {"c/templates/t.yaml": "..."}} or {"error": "...", "stage": "render"}
//
// The stages are those of `helm template`: load the chart, read the values,
// process dependencies, coalesce into the render values (schema checked),
// and run the engine; the answer is the engine's output per template.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

type request struct {
	Files       map[string][]byte `json:"files"`
	Values      string            `json:"values"`
	Set         []string          `json:"set"`
	Release     string            `json:"release"`
	Namespace   string            `json:"namespace"`
	KubeVersion string            `json:"kube_version"`
}

type answer struct {
	Templates map[string]string `json:"templates,omitempty"`
	Error     string            `json:"error,omitempty"`
	Stage     string            `json:"stage,omitempty"`
}

func render(req request) (ans answer) {
	stage := "values"
	defer func() {
		if p := recover(); p != nil {
			ans = answer{Error: fmt.Sprintf("panic: %v", p), Stage: stage}
		}
	}()
	fail := func(err error) answer { return answer{Error: err.Error(), Stage: stage} }
	// As `helm template`: the values first, then the chart.
	// As `helm template -f` reads a values file.
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(req.Values), &vals); err != nil {
		return fail(err)
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	for _, set := range req.Set {
		if err := strvals.ParseInto(set, vals); err != nil {
			return fail(err)
		}
	}
	stage = "load"
	var files []*loader.BufferedFile
	for name, data := range req.Files {
		files = append(files, &loader.BufferedFile{Name: name, Data: data})
	}
	chrt, err := loader.LoadFiles(files)
	if err != nil {
		return fail(err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return fail(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if req.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(req.KubeVersion)
		if err != nil {
			return fail(err)
		}
		caps.KubeVersion = *kv
	}
	options := chartutil.ReleaseOptions{Name: req.Release, Namespace: req.Namespace, Revision: 1, IsInstall: true}
	values, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, vals, options, caps, false)
	if err != nil {
		return fail(err)
	}
	stage = "render"
	out, err := engine.Render(chrt, values)
	if err != nil {
		return fail(err)
	}
	return answer{Templates: out}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<30)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			_ = out.Encode(answer{Error: "bad request: " + err.Error(), Stage: "request"})
			continue
		}
		if err := out.Encode(render(req)); err != nil {
			os.Exit(1)
		}
	}
}
