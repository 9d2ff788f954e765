// Command istio-oracle judges Kubernetes objects the way istiod's validating webhook does.
//
// It reads objects from stdin and writes one JSON line per object to stdout:
//
//	{"index":0,"kind":"Gateway","namespace":"ns","name":"gw","allowed":false,
//	 "errors":["partial wildcard \"*-redis.example.com\" not allowed"],"warnings":[],
//	 "message":"configuration is invalid: partial wildcard ..."}
//
// The per-object steps are those of istio.io/istio/pkg/webhooks/validation/server (Webhook.validate):
// json.Unmarshal into crd.IstioKind, collections.PilotGatewayAPI().FindByGroupKind, crd.ConvertObject
// with domain "cluster.local", schema.ValidateConfig, then the top-level field check.
// "errors" and "warnings" are the element strings of the hashicorp multierror values (as the webhook's
// toKubeWarnings does); "message" is the exact denial message the webhook would return (null when
// allowed). Unlike the webhook, warnings are also reported for rejected objects (the webhook drops them).
//
// Input (-format): "jsonl" = one JSON object per line, processed and answered as each line arrives
// (blank lines are skipped and get no index); "yaml" = a multi-document YAML or JSON stream read with
// k8s.io/apimachinery's YAMLOrJSONDecoder (a YAML document is only answered once the next "---" or
// EOF arrives); "auto" (default) = jsonl if the first non-blank byte is '{', otherwise yaml.
//
// stdout carries results only: istio's logger is sent to stderr and os.Stdout is pointed at stderr
// before the first object is read.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-multierror"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config/schema/collection"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	"istio.io/istio/pkg/log"
)

// domainSuffix is istiod's default --domain (RegistryOptions.KubeOptions.DomainSuffix).
const domainSuffix = "cluster.local"

// validFields mirrors the unexported validFields of pkg/webhooks/validation/server.
var validFields = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

type result struct {
	Index     int      `json:"index"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Allowed   bool     `json:"allowed"`
	Errors    []string `json:"errors"`
	Warnings  []string `json:"warnings"`
	Message   *string  `json:"message"`
	Panic     bool     `json:"panic,omitempty"`
}

// flatten returns the element strings of a (possibly nested) multierror, or the error's own string.
func flatten(err error) []string {
	out := []string{}
	if err == nil {
		return out
	}
	if me, ok := err.(*multierror.Error); ok && me != nil {
		for _, e := range me.Errors {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return append(out, err.Error())
}

func deny(r *result, msg string, errs []string) {
	r.Allowed = false
	r.Message = &msg
	r.Errors = errs
}

// judge mirrors Webhook.validate for CREATE/UPDATE.
func judge(schemas collection.Schemas, raw []byte, r *result) {
	defer func() {
		if p := recover(); p != nil {
			r.Panic = true
			deny(r, fmt.Sprintf("panic: %v", p), []string{fmt.Sprintf("panic: %v\n%s", p, debug.Stack())})
		}
	}()

	var obj crd.IstioKind
	if err := json.Unmarshal(raw, &obj); err != nil {
		deny(r, fmt.Sprintf("cannot decode configuration: %v", err), []string{err.Error()})
		return
	}
	r.Kind, r.Namespace, r.Name = obj.Kind, obj.Namespace, obj.Name

	gvk := obj.GroupVersionKind()
	s, exists := schemas.FindByGroupKind(resource.FromKubernetesGVK(&gvk))
	if !exists {
		msg := fmt.Sprintf("unrecognized type %v", obj.GroupVersionKind())
		deny(r, msg, []string{msg})
		return
	}

	out, err := crd.ConvertObject(s, &obj, domainSuffix)
	if err != nil {
		deny(r, fmt.Sprintf("error decoding configuration: %v", err), []string{err.Error()})
		return
	}

	warnings, err := s.ValidateConfig(*out)
	r.Warnings = flatten(warnings)
	if err != nil {
		deny(r, fmt.Sprintf("configuration is invalid: %v", err), flatten(err))
		return
	}

	// checkFields: only apiVersion, kind, metadata, spec and status may appear at the top level.
	trial := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &trial); err != nil {
		deny(r, fmt.Sprintf("cannot decode configuration fields: %v", err), []string{err.Error()})
		return
	}
	for key := range trial {
		if !validFields[key] {
			msg := fmt.Sprintf("unknown field %q on %s resource %s/%s", key, obj.Kind, obj.Namespace, obj.Name)
			deny(r, msg, []string{msg})
			return
		}
	}
	r.Allowed = true
}

func main() {
	format := flag.String("format", "auto", "input format: auto, jsonl or yaml")
	flag.Parse()

	// Results get their own handle on fd 1; everything else that writes to "stdout" goes to stderr.
	// Keep the original *os.File referenced: a second os.NewFile on fd 1 would be closed by the
	// finalizer of the unreferenced original.
	stdout := os.Stdout
	results := bufio.NewWriterSize(stdout, 1<<16)
	os.Stdout = os.Stderr
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	if err := log.Configure(opts); err != nil {
		fmt.Fprintf(os.Stderr, "istio-oracle: configuring istio log: %v\n", err)
		os.Exit(2)
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PILOT_") {
			fmt.Fprintf(os.Stderr, "istio-oracle: warning: %s is set and may change istio's behaviour\n", kv)
		}
	}

	schemas := collections.PilotGatewayAPI()
	in := bufio.NewReaderSize(os.Stdin, 16<<20)
	enc := json.NewEncoder(results)
	enc.SetEscapeHTML(false)
	index := 0
	emit := func(raw []byte) {
		r := result{Index: index, Errors: []string{}, Warnings: []string{}}
		index++
		judge(schemas, raw, &r)
		if err := enc.Encode(&r); err != nil {
			fmt.Fprintf(os.Stderr, "istio-oracle: writing result: %v\n", err)
			os.Exit(1)
		}
	}
	flush := func() {
		if err := results.Flush(); err != nil {
			fmt.Fprintf(os.Stderr, "istio-oracle: flushing results: %v\n", err)
			os.Exit(1)
		}
	}

	if *format == "auto" {
		*format = "yaml"
		for {
			b, err := in.Peek(1)
			if err != nil {
				break
			}
			if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
				_, _ = in.ReadByte()
				continue
			}
			if b[0] == '{' {
				*format = "jsonl"
			}
			break
		}
	}

	switch *format {
	case "jsonl":
		for {
			line, err := in.ReadBytes('\n')
			if t := bytes.TrimSpace(line); len(t) > 0 {
				emit(t)
			}
			// Answer everything already read before blocking on more input.
			if in.Buffered() == 0 || err != nil {
				flush()
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "istio-oracle: reading stdin: %v\n", err)
				os.Exit(1)
			}
		}
	case "yaml":
		dec := kubeyaml.NewYAMLOrJSONDecoder(in, 1<<20)
		for {
			var doc json.RawMessage
			err := dec.Decode(&doc)
			if err == io.EOF {
				flush()
				return
			}
			if err != nil {
				flush()
				fmt.Fprintf(os.Stderr, "istio-oracle: decoding stream: %v\n", err)
				os.Exit(1)
			}
			if t := bytes.TrimSpace(doc); len(t) == 0 || bytes.Equal(t, []byte("null")) {
				continue // empty document
			}
			emit(doc)
			flush()
		}
	default:
		fmt.Fprintf(os.Stderr, "istio-oracle: unknown -format %q\n", *format)
		os.Exit(2)
	}
}
