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
}

const metaVersion = 1

// maxMeta is memberlist's limit on node metadata (it panics beyond).
const maxMeta = 512

// metaOverhead is what Encode adds to the two addresses, at most: the
// version, the node id and two length prefixes of up to 2 bytes.
const metaOverhead = 1 + 4 + 2 + 2

// ErrBadMeta is the error of DecodeMeta.
var ErrBadMeta = errors.New("gossip: bad node metadata")

// Encode returns m's binary form.
func (m Meta) Encode() []byte {
	b := []byte{metaVersion}
	b = binary.BigEndian.AppendUint32(b, uint32(m.NodeID))
	for _, s := range []string{m.KafkaAddr, m.ReplicationAddr} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeMeta reads what Encode wrote.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 5 || len(b) > maxMeta {
		return m, fmt.Errorf("%w: %d bytes", ErrBadMeta, len(b))
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("%w: version %d, this node reads %d", ErrBadMeta, b[0], metaVersion)
	}
	m.NodeID = int32(binary.BigEndian.Uint32(b[1:]))
	b = b[5:]
	var fields [2]string
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Meta{}, fmt.Errorf("%w: truncated address", ErrBadMeta)
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 {
		return Meta{}, fmt.Errorf("%w: %d bytes after the addresses", ErrBadMeta, len(b))
	}
	if m.NodeID <= 0 {
		return Meta{}, fmt.Errorf("%w: node id %d", ErrBadMeta, m.NodeID)
	}
	m.KafkaAddr, m.ReplicationAddr = fields[0], fields[1]
	return m, nil
}
