package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/chronik-stream/chronik/segment"
)

// keepNodeID checks the data directory against the node id it is started
// with: a data directory belongs to the node id of its first start (kept
// in its node-id file, as Kafka keeps node.id in meta.properties). Under
// another id its partitions would be led by a broker that is gone, and in
// a cluster its Raft state (the votes it gave) would vote again as
// another node's.
func keepNodeID(fsys segment.FS, dir string, id int32) error {
	path := filepath.Join(dir, "node-id")
	b, err := segment.ReadFile(fsys, path, 64)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := segment.ReplaceFile(fsys, path, path+".tmp", []byte(strconv.Itoa(int(id))+"\n")); err != nil {
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
		return nil
	case err != nil:
		return err
	}
	kept, ok := parseNodeID(b)
	if !ok {
		return fmt.Errorf("%s is damaged (%q is not a node id): write the node id this data directory was started with into it", path, b)
	}
	if kept != id {
		return fmt.Errorf("the data directory %s belongs to node %d (its node-id file), and this node was started as --node-id %d: "+
			"start it with --node-id %d, or give node %d an empty data directory", dir, kept, id, kept, id)
	}
	return nil
}

// parseNodeID reads a node-id file: a node id (0 or more) and a newline.
func parseNodeID(b []byte) (int32, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || id < 0 {
		return 0, false
	}
	return int32(id), true
}
