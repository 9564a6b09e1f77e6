package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/chronik-stream/chronik/eventlog"
	"github.com/chronik-stream/chronik/raft"
	"github.com/chronik-stream/chronik/segment"
)

// RaftDir is the directory of a node's Raft storage in its data directory.
const RaftDir = "__raft"

// IsRaftPath reports whether path is a node's Raft storage: its directory
// (<data-dir>/__raft) or the raft.wal file in it.
func IsRaftPath(path string) bool {
	base := filepath.Base(filepath.Clean(path))
	return base == RaftDir || base == raft.StorageFile
}

// DumpRaft prints a node's Raft storage, read without changing it: the
// hard state, the snapshot, and each entry, with the metadata changes an
// entry of the fallback path carries (on the fast path Raft's entries are
// the empty ones that open each term). It returns the damage found: a
// torn tail, which a start cuts off, or an entry that does not decode.
func DumpRaft(w io.Writer, path string, asJSON bool) (damage int, err error) {
	c, err := raft.ReadStorage(segment.OSFS{}, path)
	if err != nil {
		return 0, err
	}
	line := func(text string, obj map[string]any) error {
		if asJSON {
			b, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			text = string(b)
		}
		_, err := fmt.Fprintln(w, text)
		return err
	}
	hs := c.State.HardState
	// Past the records, zeros are room allocated ahead, not records.
	bytes := c.Size
	if c.Why == "" {
		bytes = c.Good
	}
	if err := line(fmt.Sprintf("file=%s bytes=%d allocated=%d term=%d vote=%d commit=%d", c.Path, bytes, c.Size, hs.Term, hs.Vote, hs.Commit),
		map[string]any{"file": c.Path, "bytes": bytes, "allocated": c.Size, "term": hs.Term, "vote": hs.Vote, "commit": hs.Commit}); err != nil {
		return 0, err
	}
	if s := c.State.Snapshot; s != nil {
		text := fmt.Sprintf("snapshot index=%d term=%d bytes=%d", s.Index, s.Term, len(s.Data))
		obj := map[string]any{"snapshot": map[string]any{"index": s.Index, "term": s.Term, "bytes": len(s.Data)}}
		if off, meta, err := decodeRaftSnapshot(s.Data); err == nil {
			text += fmt.Sprintf(" metadata_offset=%d metadata_bytes=%d", off, len(meta))
			obj["snapshot"].(map[string]any)["metadata_offset"] = off
		}
		if err := line(text, obj); err != nil {
			return 0, err
		}
	}
	for _, e := range c.State.Entries {
		if len(e.Data) == 0 {
			if err := line(fmt.Sprintf("entry index=%d term=%d empty", e.Index, e.Term),
				map[string]any{"entry": map[string]any{"index": e.Index, "term": e.Term}}); err != nil {
				return damage, err
			}
			continue
		}
		proposer, seq, batch, err := decodeProposal(e.Data)
		if err != nil {
			damage++
			if err := line(fmt.Sprintf("damage entry index=%d term=%d bytes=%d: %v", e.Index, e.Term, len(e.Data), err),
				map[string]any{"damage": err.Error(), "index": e.Index, "term": e.Term}); err != nil {
				return damage, err
			}
			continue
		}
		if err := line(fmt.Sprintf("entry index=%d term=%d proposer=%d seq=%d bytes=%d", e.Index, e.Term, proposer, seq, len(e.Data)),
			map[string]any{"entry": map[string]any{"index": e.Index, "term": e.Term, "proposer": proposer, "seq": seq, "bytes": len(e.Data)}}); err != nil {
			return damage, err
		}
		if err := eventlog.DumpBatch(w, batch, asJSON); err != nil {
			damage++
			if err := line(fmt.Sprintf("damage entry index=%d: its metadata batch: %v", e.Index, err),
				map[string]any{"damage": err.Error(), "index": e.Index}); err != nil {
				return damage, err
			}
		}
	}
	if c.Why != "" {
		damage++
		if err := line(fmt.Sprintf("damage position=%d bytes=%d: %s (a torn tail: the node cuts it off when it starts)", c.Good, c.Size-c.Good, c.Why),
			map[string]any{"damage": c.Why, "position": c.Good, "bytes": c.Size - c.Good}); err != nil {
			return damage, err
		}
	}
	return damage, nil
}
