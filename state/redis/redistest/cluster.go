package redistest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// clusterMasters is the number of masters StartCluster creates: the
// smallest cluster redis-cli --cluster create accepts.
const clusterMasters = 3

// Cluster is a Redis Cluster of three masters and no replicas, each master
// a Server in its own directory. The 16384 hash slots are split evenly.
type Cluster struct {
	// Nodes are the masters, in the order their slots were assigned
	// (the first holds slots 0-5460).
	Nodes []*Server
	// URL names every node, "redis://<addr1>?addr=<addr2>&addr=<addr3>",
	// the form rueidis.ParseURL and the -state.redis flag take for a
	// Cluster.
	URL string
}

// Addrs returns the host:port of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts three redis-server --cluster-enabled yes nodes on
// free loopback ports (client and bus port), joins them with redis-cli
// --cluster create, and waits until every node reports cluster_state:ok
// and knows the three masters. The nodes are killed in t.Cleanup. opts
// applies to every node (ReplicaOf must be nil).
func StartCluster(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	requireBinary(tb, "redis-server")
	requireBinary(tb, "redis-cli")
	if opts.ReplicaOf != nil {
		tb.Fatalf("redistest: StartCluster: ReplicaOf is not supported")
	}
	args := []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		// Short enough that a killed node is noticed within a test,
		// long enough that a loaded machine does not fail nodes over.
		"--cluster-node-timeout", "5000",
	}
	args = append(args, optionArgs(tb, opts)...)
	c := &Cluster{}
	create := []string{"--cluster", "create"}
	for range clusterMasters {
		n := start(tb, tb.TempDir(), args, true)
		c.Nodes = append(c.Nodes, n)
		create = append(create, n.Addr)
	}
	c.URL = "redis://" + c.Nodes[0].Addr + "?addr=" + c.Nodes[1].Addr + "&addr=" + c.Nodes[2].Addr
	create = append(create, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.Command("redis-cli", create...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli %s: %s\n%s", strings.Join(create, " "), err, out)
	}
	c.WaitOK()
	return c
}

// WaitOK waits until every running node reports cluster_state:ok and
// knows all the masters, failing the test after a timeout. Call it after
// restarting a node.
func (c *Cluster) WaitOK() {
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		n.tb.Helper()
		n.waitFor("cluster_state:ok", func() (bool, error) {
			info, err := n.do("CLUSTER", "INFO")
			ok := strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes)))
			return ok, err
		})
	}
}

// optionArgs returns the redis-server arguments for the persistence
// options of opts.
func optionArgs(tb testing.TB, opts Options) []string {
	tb.Helper()
	var args []string
	if opts.AppendOnly || opts.AppendFsync != "" {
		args = append(args, "--appendonly", "yes")
	}
	switch opts.AppendFsync {
	case "":
	case "always", "everysec", "no":
		args = append(args, "--appendfsync", opts.AppendFsync)
	default:
		tb.Fatalf("redistest: AppendFsync %q: want always, everysec or no", opts.AppendFsync)
	}
	return append(args, opts.Args...)
}
