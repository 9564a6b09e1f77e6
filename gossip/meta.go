package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Meta is what a node tells the others about itself.
type Meta struct {
	NodeID          int32
	KafkaAddr       string // host:port clients connect to
	ReplicationAddr string // host:port of Raft and metadata shipping
	// ClusterID is the id of the cluster whose metadata this node holds;
	// empty for a node that holds none yet (it joins the first cluster it
	// meets). Nodes of two clusters refuse each other.
	ClusterID string
	// Voters are the controller voters this node holds for the cluster's
	// (given to it, or chosen when it bootstrapped); empty while it does
	// not know them yet. A node bootstrapping takes them from the others,
	// and a node given other voters refuses to start.
	Voters []int32
	// Formed: this node's metadata holds a controller that a quorum of
	// several voters elected (a cluster formed; a single node's data is
	// not one). A voter with a new, empty disk votes for no node that
	// says so until it has taken what the cluster committed.
	Formed bool
}

// metaVersion is what Encode writes; version 1 had no cluster id, version
// 2 no voters.
const metaVersion = 3

// MaxClusterID bounds the length of a cluster id.
const MaxClusterID = 64

// flagFormed is Formed's bit in the flags byte of version 3.
const flagFormed = 1

// MaxVoters bounds the voters a node gossips (a Raft quorum has a handful).
const MaxVoters = 16

// maxMeta is memberlist's limit on node metadata (it panics beyond).
const maxMeta = 512

// metaOverhead is what Encode adds to the two addresses, at most: the
// version, the node id, the cluster id, three length prefixes of up to 2
// bytes, the voters with their count, and the flags.
const metaOverhead = 1 + 4 + MaxClusterID + 2 + 2 + 2 + 1 + 4*MaxVoters + 1

// ErrBadMeta is the error of DecodeMeta.
var ErrBadMeta = errors.New("gossip: bad node metadata")

// Encode returns m's binary form.
func (m Meta) Encode() []byte {
	b := []byte{metaVersion}
	b = binary.BigEndian.AppendUint32(b, uint32(m.NodeID))
	for _, s := range []string{m.KafkaAddr, m.ReplicationAddr, m.ClusterID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Voters)))
	for _, id := range m.Voters {
		b = binary.BigEndian.AppendUint32(b, uint32(id))
	}
	var flags byte
	if m.Formed {
		flags |= flagFormed
	}
	return append(b, flags)
}

// DecodeMeta reads what Encode wrote.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 5 || len(b) > maxMeta {
		return m, fmt.Errorf("%w: %d bytes", ErrBadMeta, len(b))
	}
	if b[0] < 1 || b[0] > metaVersion {
		return m, fmt.Errorf("%w: version %d, this node reads 1 to %d", ErrBadMeta, b[0], metaVersion)
	}
	version := b[0]
	fields := make([]string, min(version+1, 3)) // the addresses, then the cluster id
	m.NodeID = int32(binary.BigEndian.Uint32(b[1:]))
	b = b[5:]
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Meta{}, fmt.Errorf("%w: truncated field", ErrBadMeta)
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if version >= 3 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > MaxVoters || n*4 > uint64(len(b)-k) {
			return Meta{}, fmt.Errorf("%w: bad voters", ErrBadMeta)
		}
		b = b[k:]
		for range n {
			id := int32(binary.BigEndian.Uint32(b))
			if id <= 0 {
				return Meta{}, fmt.Errorf("%w: voter %d", ErrBadMeta, id)
			}
			m.Voters = append(m.Voters, id)
			b = b[4:]
		}
		if len(b) == 0 || b[0]&^flagFormed != 0 {
			return Meta{}, fmt.Errorf("%w: bad flags", ErrBadMeta)
		}
		m.Formed, b = b[0]&flagFormed != 0, b[1:]
	}
	if len(b) != 0 {
		return Meta{}, fmt.Errorf("%w: %d bytes after the fields", ErrBadMeta, len(b))
	}
	if m.NodeID <= 0 {
		return Meta{}, fmt.Errorf("%w: node id %d", ErrBadMeta, m.NodeID)
	}
	m.KafkaAddr, m.ReplicationAddr = fields[0], fields[1]
	if len(fields) > 2 {
		if m.ClusterID = fields[2]; len(m.ClusterID) > MaxClusterID {
			return Meta{}, fmt.Errorf("%w: a cluster id of %d bytes", ErrBadMeta, len(m.ClusterID))
		}
	}
	return m, nil
}
