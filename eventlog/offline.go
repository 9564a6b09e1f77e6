package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/chronik-stream/chronik/segment"
)

var errStop = errors.New("stop")

// ReplayDir rebuilds the metadata state of a data directory offline and
// read-only, without taking its lock: the newest valid snapshot, then the
// batches after it, up to the first damage (which a broker would truncate
// as a torn tail, or refuse as corruption). It returns the damage found.
func ReplayDir(dataDir string, log *slog.Logger) (*State, []segment.Damage, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(dataDir, segment.PartitionDir(TopicName, PartitionID))
	s, _, _, err := loadSnapshot(segment.OSFS{}, dir, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%s holds no metadata log (%w): is it a chronik data directory?", dataDir, err)
	}
	var damage []segment.Damage
	err = segment.WalkBatches(dir, segment.Walk{
		From: s.Offset, To: -1,
		Damage: func(d segment.Damage) { damage = append(damage, d) },
		Batch: func(b *segment.FoundBatch) error {
			if len(damage) > 0 || !b.CRCOK {
				return errStop
			}
			if b.Header.BaseOffset < s.Offset {
				return nil // covered by the snapshot
			}
			events, _, err := decodeBatch(b.Bytes)
			if err == nil {
				err = Apply(s, events...)
			}
			if err != nil {
				damage = append(damage, segment.Damage{File: b.File, Position: int64(b.Position), Offset: b.Header.BaseOffset, Why: err.Error()})
				return errStop
			}
			s.Offset = b.Header.LastOffset() + 1
			return nil
		},
	})
	if err != nil && !errors.Is(err, errStop) {
		if len(damage) == 0 && s.Offset == 0 {
			return nil, nil, fmt.Errorf("%s holds no metadata log: %w", dataDir, err)
		}
		return nil, damage, err
	}
	return s, damage, nil
}

// PrintState prints a state for operators: controller, brokers, topics
// with their partitions, configs and producer ids; or, with asJSON, the
// state as one JSON object.
func PrintState(w io.Writer, s *State, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	fmt.Fprintf(w, "offset: %d\n", s.Offset)
	c := s.Controller
	fmt.Fprintf(w, "controller: term=%d leader=%d voters=%s\n", c.Term, c.Leader, formatInts(c.Voters))
	fmt.Fprintf(w, "brokers: %d\n", len(s.Brokers))
	for _, id := range sortedKeys(s.Brokers) {
		b := s.Brokers[id]
		state := "unfenced"
		if b.Fenced {
			state = "fenced"
		}
		var eps []string
		for _, ep := range b.Endpoints {
			eps = append(eps, fmt.Sprintf("%s://%s:%d", ep.Listener, ep.Host, ep.Port))
		}
		fmt.Fprintf(w, "  broker %d %s endpoints=%s rack=%q incarnation=%s\n", id, state, strings.Join(eps, ","), b.Rack, b.Incarnation)
		if blk, ok := s.ProducerBlocks[id]; ok {
			fmt.Fprintf(w, "    producer ids %d..%d\n", blk.First, blk.First+int64(blk.Count)-1)
		}
	}
	fmt.Fprintf(w, "next producer id: %d\n", s.NextProducerID)
	for _, res := range sortedKeys(s.BrokerConfigs) {
		name := "cluster default"
		if res != "" {
			name = "broker " + res
		}
		fmt.Fprintf(w, "configs of %s: %s\n", name, formatConfigs(s.BrokerConfigs[res]))
	}
	fmt.Fprintf(w, "topics: %d\n", len(s.Topics))
	for _, name := range sortedKeys(s.Topics) {
		tp := s.Topics[name]
		fmt.Fprintf(w, "  topic %s id=%s partitions=%d replication_factor=%d", name, tp.ID, len(tp.Partitions), tp.ReplicationFactor)
		if len(tp.Configs) > 0 {
			fmt.Fprintf(w, " configs=%s", formatConfigs(tp.Configs))
		}
		fmt.Fprintln(w)
		for i, p := range tp.Partitions {
			fmt.Fprintf(w, "    %s-%d leader=%d leader_epoch=%d replicas=%s isr=%s\n", name, i, p.Leader, p.LeaderEpoch, formatInts(p.Replicas), formatInts(p.ISR))
		}
	}
	return nil
}

func formatInts(v []int32) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = fmt.Sprint(n)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func formatConfigs(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}
