package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// k8sObject is the part of a Kubernetes object the manifest test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name                  string `yaml:"name"`
					PersistentVolumeClaim *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name           string    `yaml:"name"`
	Args           []string  `yaml:"args"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	HTTPGet   any `yaml:"httpGet"`
	TCPSocket any `yaml:"tcpSocket"`
	GRPC      any `yaml:"grpc"`
}

// flagValue returns the value of -name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "-"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	return ""
}

// Regression: the README's Kubernetes example bound the decision API to
// 127.0.0.1 and probed it with httpGet, which the kubelet sends to the pod
// IP: the pod could never become ready. And one ReadWriteOnce claim was
// shared by every replica of a Deployment. kubectl cannot check a manifest
// without a cluster (even --dry-run=client fetches the server's OpenAPI) and
// kubeconform downloads its schemas, so this test reads the manifest as
// YAML, checks what makes it work, and runs its nba command line and its
// probe commands against each other.
func TestKubernetesManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docker, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	_, serveHelp, _ := runNBA(t, "serve", "-h")
	_, checkHelp, _ := runNBA(t, "healthcheck", "-h")

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var nbaArgs []string
	var probes [][]string
	for i := 0; ; i++ {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("document %d: apiVersion %q, kind %q, metadata.name %q: want all three", i, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		if o.Kind != "StatefulSet" && o.Kind != "Deployment" {
			continue
		}
		pod := o.Spec.Template.Spec
		for _, c := range pod.Containers {
			if len(c.Args) == 0 || c.Args[0] != "serve" {
				continue
			}
			nbaArgs = c.Args
			for _, a := range c.Args[1:] {
				if name, ok := strings.CutPrefix(a, "-"); ok && !strings.Contains(serveHelp, "\n  -"+strings.SplitN(name, "=", 2)[0]+" ") {
					t.Errorf("nba serve has no flag %s", a)
				}
			}
			addr := flagValue(c.Args, "http.addr")
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("-http.addr %q: %v", addr, err)
			}
			loopback := host == "localhost" || net.ParseIP(host).IsLoopback()
			for name, p := range map[string]*k8sProbe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				switch {
				case p == nil:
					if name != "startupProbe" {
						t.Errorf("%s: no %s", c.Name, name)
					}
					continue
				case loopback && (p.HTTPGet != nil || p.TCPSocket != nil || p.GRPC != nil):
					t.Errorf("%s: %s connects to the pod IP, but nba listens on %s only", c.Name, name, addr)
					continue
				case p.Exec == nil:
					continue
				}
				cmd := p.Exec.Command
				if len(cmd) < 2 || !bytes.Contains(docker, []byte(" "+cmd[0]+"\n")) || cmd[1] != "healthcheck" {
					t.Errorf("%s: %s runs %q, want the image's nba healthcheck", c.Name, name, cmd)
					continue
				}
				if got := flagValue(cmd, "addr"); got != addr {
					t.Errorf("%s: %s checks %q, nba listens on %q", c.Name, name, got, addr)
				}
				if want := map[bool]string{true: "/readyz", false: ""}[name != "livenessProbe"]; flagValue(cmd, "path") != want {
					t.Errorf("%s: %s asks %q, want %q", c.Name, name, flagValue(cmd, "path"), want)
				}
				for _, a := range cmd[2:] {
					if name, ok := strings.CutPrefix(a, "-"); ok && !strings.Contains(checkHelp, "\n  -"+name+" ") {
						t.Errorf("nba healthcheck has no flag %s", a)
					}
				}
				probes = append(probes, cmd)
			}
			// The state volume: one per replica.
			state := flagValue(c.Args, "state")
			i := slices.IndexFunc(c.VolumeMounts, func(m struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
			}) bool {
				return m.MountPath == state
			})
			if i < 0 {
				t.Errorf("%s: no volume mounted at -state %q", c.Name, state)
				continue
			}
			vol := c.VolumeMounts[i].Name
			perPod := o.Kind == "StatefulSet" && slices.ContainsFunc(o.Spec.VolumeClaimTemplates, func(v struct {
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}) bool {
				return v.Metadata.Name == vol
			})
			replicas := 1
			if o.Spec.Replicas != nil {
				replicas = *o.Spec.Replicas
			}
			if !perPod && replicas > 1 {
				t.Errorf("%s %s: %d replicas share the state volume %q; each needs its own (a StatefulSet's volumeClaimTemplates)", o.Kind, o.Metadata.Name, replicas, vol)
			}
		}
	}
	if nbaArgs == nil || len(probes) < 2 {
		t.Fatalf("no nba serve container with exec probes in the manifest")
	}

	// Run the container's command line (with a free port, the demo bundle
	// and a temporary state directory) and its probe commands against it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	replace := map[string]string{"-bundle": exportDemo(t), "-state": t.TempDir(), "-http.addr": addr, "-addr": addr}
	edit := func(args []string) []string {
		out := slices.Clone(args)
		for i := 1; i < len(out); i++ {
			if v, ok := replace[out[i-1]]; ok {
				out[i] = v
			}
		}
		return out
	}
	p := startServe(t, edit(nbaArgs)[1:]...)
	if p.addr != addr {
		t.Fatalf("nba serves on %s, want %s", p.addr, addr)
	}
	deadline := time.Now().Add(startDeadline)
	for _, cmd := range probes {
		for {
			code, _, stderr := runNBA(t, edit(cmd)[1:]...)
			if code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("probe %q: exit %d: %s", cmd, code, stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
