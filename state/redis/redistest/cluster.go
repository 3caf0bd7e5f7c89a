package redistest

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// clusterMasters is the number of masters StartCluster creates: the
// smallest cluster redis-cli --cluster create accepts.
const clusterMasters = 3

// Cluster is a Redis Cluster of three masters, each with
// Options.Replicas replicas (none by default), each node a Server in its
// own directory. The 16384 hash slots are split evenly.
type Cluster struct {
	// Nodes are the masters, in the order their slots were assigned
	// (the first holds slots 0-5460). After a failover a node here may be
	// a replica and a replica a master: ask the servers (Role).
	Nodes []*Server
	// Replicas are the replicas as created: those of Nodes[i] are
	// Replicas[i*r:(i+1)*r], r being Options.Replicas.
	Replicas []*Server
	// URL names every node, "redis://<addr1>?addr=<addr2>&addr=<addr3>",
	// the form rueidis.ParseURL and the -state.redis flag take for a
	// Cluster.
	URL string

	all []*Server // masters then replicas, as created
}

// Addrs returns the host:port of every master as created.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts three redis-server --cluster-enabled yes masters and
// opts.Replicas replicas of each on free loopback ports (client and bus
// port), joins them with redis-cli --cluster create --cluster-replicas,
// and waits until every node reports cluster_state:ok and knows every
// node, and every master lists its replicas online (so WAIT counts them).
// The nodes are killed in t.Cleanup. opts applies to every node
// (ReplicaOf must be nil).
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
	if opts.Replicas < 0 {
		tb.Fatalf("redistest: StartCluster: Replicas %d < 0", opts.Replicas)
	}
	c := &Cluster{}
	create := []string{"--cluster", "create"}
	var all []*Server
	for range clusterMasters * (1 + opts.Replicas) {
		n := start(tb, tb.TempDir(), args, true)
		all = append(all, n)
		create = append(create, n.Addr)
	}
	// redis-cli makes the first nodes given the masters, in order.
	c.Nodes = all[:clusterMasters]
	c.URL = "redis://" + c.Nodes[0].Addr + "?addr=" + c.Nodes[1].Addr + "&addr=" + c.Nodes[2].Addr
	create = append(create, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	cmd := exec.Command("redis-cli", create...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli %s: %s\n%s", strings.Join(create, " "), err, out)
	}
	c.all = all
	// redis-cli pairs replicas with masters as it likes (on one host it
	// shuffles them): ask each replica whose it is.
	byPort := map[int][]*Server{}
	for _, n := range all[clusterMasters:] {
		var port int
		n.waitFor("replica role", func() (bool, error) {
			info, err := n.do("INFO", "replication")
			port, _ = strconv.Atoi(infoField(info, "master_port"))
			return infoField(info, "role") == "slave" && port != 0, err
		})
		byPort[port] = append(byPort[port], n)
	}
	for _, m := range c.Nodes {
		if len(byPort[m.port]) != opts.Replicas {
			tb.Fatalf("redistest: master %s has %d replicas; want %d", m.Addr, len(byPort[m.port]), opts.Replicas)
		}
		c.Replicas = append(c.Replicas, byPort[m.port]...)
	}
	c.WaitOK()
	for i, r := range c.Replicas {
		m := c.Nodes[i/opts.Replicas]
		online := fmt.Sprintf("port=%d,state=online", r.port)
		m.waitFor("replica "+r.Addr+" online", func() (bool, error) {
			info, err := m.do("INFO", "replication")
			return strings.Contains(info, online), err
		})
	}
	return c
}

// Role returns "master" or "slave" (a replica) as the server's INFO
// replication says, or "" with the error when it does not answer.
func (s *Server) Role() (string, error) {
	info, err := s.do("INFO", "replication")
	return infoField(info, "role"), err
}

// infoField returns the value of field in an INFO answer, "" when absent.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// WaitOK waits until every running node reports cluster_state:ok and
// knows every node, failing the test after a timeout. Call it after
// restarting a node, or after killing a master to wait for its replica to
// take over.
func (c *Cluster) WaitOK() {
	for _, n := range c.all {
		if !n.running() {
			continue
		}
		n.tb.Helper()
		n.waitFor("cluster_state:ok", func() (bool, error) {
			info, err := n.do("CLUSTER", "INFO")
			ok := strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.all)))
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

// Owner returns the running master that serves key now (it answers a
// read of key instead of MOVED) and, when the Cluster was started with
// replicas and that master is one of Nodes, its first replica as created
// (nil otherwise). It fails the test when no running master owns key.
func (c *Cluster) Owner(key string) (master, replica *Server) {
	c.all[0].tb.Helper()
	for _, n := range c.all {
		if !n.running() {
			continue
		}
		if role, _ := n.Role(); role != "master" {
			continue
		}
		if _, err := n.do("EXISTS", key); err != nil {
			continue // MOVED: another master's slot
		}
		if i := slices.Index(c.Nodes, n); i >= 0 && len(c.Replicas) > 0 {
			replica = c.Replicas[i*len(c.Replicas)/len(c.Nodes)]
		}
		return n, replica
	}
	c.all[0].tb.Fatalf("redistest: no running master owns %q", key)
	return nil, nil
}
