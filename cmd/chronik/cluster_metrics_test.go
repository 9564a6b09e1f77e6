package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrapeGauges reads the chronik_ samples of a /metrics page, by their
// name and labels as written.
func scrapeGauges(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "chronik_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestClusterMetrics: each node's /metrics says who the controller is,
// whether it is one of the voters, the Raft term, the members and
// brokers, and its metadata log's commit point and end; the controller
// says how far each follower is behind (on both paths).
func TestClusterMetrics(t *testing.T) {
	onBothPaths(t, testClusterMetrics)
}

func testClusterMetrics(t *testing.T, extra ...string) {
	if testing.Short() {
		t.Skip("runs three processes")
	}
	var httpAddrs [5]string
	tc := startClusterWith(t, func(id int) []string {
		if httpAddrs[id] == "" {
			httpAddrs[id] = freeAddr(t)
		}
		return []string{"--http-addr", httpAddrs[id]}
	}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := tc.client(1)
	controller := tc.controller(ctx, cl)
	for i := range 3 {
		if err := createThrough(ctx, cl, controller, fmt.Sprint("metrics-", i)); err != nil {
			t.Fatal(err)
		}
	}
	var last [4]map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok := true
		for id := 1; id <= 3; id++ {
			g := scrapeGauges(t, httpAddrs[id])
			last[id] = g
			ok = ok && g["chronik_cluster_controller"] == flag(id == controller) &&
				g["chronik_cluster_controller_id"] == float64(controller) &&
				g["chronik_cluster_voter"] == 1 && g["chronik_raft_term"] > 0 &&
				g["chronik_raft_term"] == last[1]["chronik_raft_term"] &&
				g["chronik_cluster_members"] == 3 &&
				g[`chronik_cluster_brokers{state="unfenced"}`] == 3 && g[`chronik_cluster_brokers{state="fenced"}`] == 0 &&
				g["chronik_metadata_end_offset"] > 0 &&
				g["chronik_metadata_committed_offset"] == g["chronik_metadata_end_offset"] &&
				g["chronik_metadata_end_offset"] == last[1]["chronik_metadata_end_offset"]
		}
		for id := 1; id <= 3; id++ {
			if id != controller {
				lag, found := last[controller][fmt.Sprintf(`chronik_metadata_follower_lag{follower="%d"}`, id)]
				ok = ok && found && lag == 0
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller %d; the nodes' cluster metrics:\n1: %v\n2: %v\n3: %v", controller, last[1], last[2], last[3])
		}
	}
}
