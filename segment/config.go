package segment

import (
	"fmt"
	"strings"
	"time"
)

// Config is the per-partition (per-topic) configuration of a Log. The names
// in the comments are the Kafka topic configs they implement.
type Config struct {
	// SegmentBytes is the size at which the active segment is sealed and a
	// new one started (segment.bytes). At most 1 GiB.
	SegmentBytes int64
	// SegmentMs is the age at which a non-empty active segment is rolled
	// even if it is not full (segment.ms).
	SegmentMs time.Duration
	// RetentionMs deletes sealed segments whose newest record is older than
	// this (retention.ms). Negative means keep forever.
	RetentionMs time.Duration
	// RetentionBytes deletes the oldest sealed segments while the partition
	// is larger than this (retention.bytes). Negative means no limit.
	RetentionBytes int64
	// MaxMessageBytes is the largest batch accepted (max.message.bytes).
	MaxMessageBytes int
	// IndexIntervalBytes is how many log bytes lie between two entries of
	// the sparse offset and time indexes (index.interval.bytes).
	IndexIntervalBytes int
	// PreallocateBytes is how far ahead of the write position disk blocks
	// are allocated, in one step, at most: the first step of a log opened
	// is 64 KiB, and each one after doubles up to it.
	PreallocateBytes int64
	// Prezero writes zeros over newly allocated blocks and syncs them, off
	// the append path, so that later syncs overwrite written blocks instead
	// of converting unwritten extents; only while the log's batches average
	// under 128 KiB. See the README's performance section.
	Prezero bool
	// MmapWrites makes appends copy into the active segment's mapping
	// (mapped read-write) instead of writing with pwrite (the mapping is then
	// read-only and serves reads). On ext4 every first write to a mapped page
	// faults into the file system, which made mapped appends 1.5-4x slower
	// than pwrite here: see the README's performance section.
	MmapWrites bool
	// CheckRecords makes Append check every record of a batch too
	// (CheckRecords), decompressing it, as a Kafka broker checks what
	// clients produce; logs the broker writes itself need not.
	CheckRecords bool
	// LogAppendTime stamps each appended batch with the time of its append
	// (Kafka's message.timestamp.type=LogAppendTime): its max timestamp
	// becomes that time, the timestamp type bit of its attributes is set
	// (every record's timestamp is then the max timestamp) and its CRC is
	// computed again.
	LogAppendTime bool
	// WritersWait says that every writer of the log waits for its append
	// (Appended.Wait) right after making it, as the metadata log's do: a
	// lone write is then left for that wait to sync without waking the
	// group committer's goroutine too. A write nobody waits for is synced
	// once another write or wait wakes the committer: not for data
	// partitions, whose acks=1 writes may be answered later.
	WritersWait bool
	// RecoveryPointInterval is how often, at most, the synced position is
	// recorded for crash recovery. Damage found before it at open is
	// corruption; damage after it is a torn tail.
	RecoveryPointInterval time.Duration
}

// Defaults, Kafka's where Kafka has one.
const (
	DefaultSegmentBytes          = 1 << 30
	DefaultSegmentMs             = 7 * 24 * time.Hour
	DefaultRetentionMs           = 7 * 24 * time.Hour
	DefaultMaxMessageBytes       = 1048588
	DefaultIndexIntervalBytes    = 4096
	DefaultPreallocateBytes      = 8 << 20
	DefaultRecoveryPointInterval = time.Second

	// maxSegmentBytes keeps every file position within the uint32 index entries.
	maxSegmentBytes = 1 << 30
)

// DefaultConfig is the configuration of a topic created without configs.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:          DefaultSegmentBytes,
		SegmentMs:             DefaultSegmentMs,
		RetentionMs:           DefaultRetentionMs,
		RetentionBytes:        -1,
		MaxMessageBytes:       DefaultMaxMessageBytes,
		IndexIntervalBytes:    DefaultIndexIntervalBytes,
		PreallocateBytes:      DefaultPreallocateBytes,
		Prezero:               true,
		RecoveryPointInterval: DefaultRecoveryPointInterval,
	}
}

// Validate says what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > maxSegmentBytes:
		return fmt.Errorf("segment: segment.bytes %d must be between 14 and %d", c.SegmentBytes, maxSegmentBytes)
	case c.SegmentMs <= 0:
		return fmt.Errorf("segment: segment.ms %v must be positive", c.SegmentMs)
	case c.MaxMessageBytes < BatchHeaderSize:
		return fmt.Errorf("segment: max.message.bytes %d is smaller than a batch header", c.MaxMessageBytes)
	case c.IndexIntervalBytes <= 0:
		return fmt.Errorf("segment: index.interval.bytes %d must be positive", c.IndexIntervalBytes)
	case c.PreallocateBytes <= 0:
		return fmt.Errorf("segment: preallocation step %d must be positive", c.PreallocateBytes)
	case c.RecoveryPointInterval <= 0:
		return fmt.Errorf("segment: recovery point interval %v must be positive", c.RecoveryPointInterval)
	}
	return nil
}

// Profile bounds the group committer (--wal-profile, CHRONIK_WAL_PROFILE).
type Profile struct {
	// Name is the profile's name: low, medium, high or ultra.
	Name string
	// MaxWrites is the most writes one sync covers.
	MaxWrites int
	// MaxBytes is the most bytes one sync covers.
	MaxBytes int64
	// MaxWait is the longest a sync round waits to fill up to the size of
	// the previous round under load. A lone write never waits.
	MaxWait time.Duration
	// QueueDepth is the most writes waiting for a sync; past it Append
	// returns ErrQueueFull, which is retriable.
	QueueDepth int
}

// The WAL profiles of design.md.
var (
	ProfileLow    = Profile{Name: "low", MaxWrites: 500, MaxBytes: 5_000_000, MaxWait: 2 * time.Millisecond, QueueDepth: 2_500}
	ProfileMedium = Profile{Name: "medium", MaxWrites: 2_000, MaxBytes: 15_000_000, MaxWait: 10 * time.Millisecond, QueueDepth: 10_000}
	ProfileHigh   = Profile{Name: "high", MaxWrites: 10_000, MaxBytes: 50_000_000, MaxWait: 50 * time.Millisecond, QueueDepth: 50_000}
	ProfileUltra  = Profile{Name: "ultra", MaxWrites: 20_000, MaxBytes: 100_000_000, MaxWait: 100 * time.Millisecond, QueueDepth: 100_000}
)

// Profiles lists the WAL profiles from the lowest to the highest.
var Profiles = []Profile{ProfileLow, ProfileMedium, ProfileHigh, ProfileUltra}

// ParseProfile returns the profile with the given name (case-insensitive).
func ParseProfile(name string) (Profile, error) {
	for _, p := range Profiles {
		if strings.EqualFold(p.Name, strings.TrimSpace(name)) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("segment: unknown WAL profile %q: use low, medium, high or ultra", name)
}
