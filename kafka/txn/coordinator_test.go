package txn

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/segment"
	"github.com/chronik-stream/chronik/segment/segmenttest"
)

// markers records the markers a coordinator writes, and can fail them.
type markers struct {
	mu      sync.Mutex
	written []string
	fail    bool
}

func (m *markers) write(topic string, p int32, pid int64, epoch int16, commit bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("marker write failed")
	}
	m.written = append(m.written, fmt.Sprintf("%s-%d pid %d epoch %d commit %v", topic, p, pid, epoch, commit))
	return nil
}

func (m *markers) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.written
	m.written = nil
	sort.Strings(out)
	return out
}

func testCoordinator(t *testing.T, cfg Config) (c *Coordinator, m *markers, reopen func() *Coordinator) {
	t.Helper()
	fs := segmenttest.NewMemFS()
	m = &markers{}
	next := int64(100)
	cfg.NewProducerID = func() (int64, error) { next++; return next, nil }
	cfg.WriteMarker = m.write
	if cfg.PartitionExists == nil {
		cfg.PartitionExists = func(topic string, p int32) bool { return topic == "t" && p < 4 }
	}
	cfg.OffsetsTopic = "__consumer_offsets"
	var store *segment.Store
	open := func() *Coordinator {
		var err error
		store, err = segment.OpenStore("/data", segment.StoreOptions{FS: fs, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		lcfg := segment.DefaultConfig()
		lcfg.SegmentBytes, lcfg.PreallocateBytes = 1<<20, 64<<10
		l, err := store.Open(Topic, 0, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(l, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c = open()
	t.Cleanup(func() { c.Close(); store.Close() })
	return c, m, func() *Coordinator {
		c.Close()
		store.Close()
		c = open()
		return c
	}
}

func initPID(t *testing.T, c *Coordinator, id string, pid int64, epoch int16) (int64, int16) {
	t.Helper()
	gotPID, gotEpoch, code := c.InitProducerID(id, 60000, pid, epoch)
	if code != 0 {
		t.Fatalf("init %s: code %d", id, code)
	}
	return gotPID, gotEpoch
}

func add(c *Coordinator, id string, pid int64, epoch int16, topic string, ps ...int32) int16 {
	for _, code := range c.AddPartitions(id, pid, epoch, map[string][]int32{topic: ps})[topic] {
		if code != 0 {
			return code
		}
	}
	return 0
}

// TestTransactionLifecycle: ids and epochs, a commit and an abort with a
// marker in every partition, retries of an end, fencing by a new
// incarnation, and the refusals of each state.
func TestTransactionLifecycle(t *testing.T) {
	c, m, _ := testCoordinator(t, Config{})
	if _, _, code := c.InitProducerID("a", int32((20 * time.Minute).Milliseconds()), -1, -1); code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("a 20-minute timeout: code %d", code)
	}
	pid, epoch := initPID(t, c, "a", -1, -1)
	if pid != 101 || epoch != 0 {
		t.Fatalf("first init: %d/%d", pid, epoch)
	}
	if code := c.EndTxn("a", pid, epoch, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("end of no transaction: code %d", code)
	}
	if code := add(c, "a", pid, epoch, "t", 0, 1); code != 0 {
		t.Fatalf("add: %d", code)
	}
	if code := add(c, "a", pid, epoch, "nope", 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("add of an unknown topic: %d", code)
	}
	if code := add(c, "a", pid, epoch, "__consumer_offsets", 0); code != 0 {
		t.Fatalf("add offsets: %d", code)
	}
	if !c.Verify(pid, epoch, "t", 1) || c.Verify(pid, epoch, "t", 2) || c.Verify(pid, epoch+1, "t", 1) || c.Verify(pid+1, epoch, "t", 1) {
		t.Fatal("Verify: only the open transaction's producer, epoch and partitions may open it in a partition")
	}
	if code := c.EndTxn("a", pid, epoch, true); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if c.Verify(pid, epoch, "t", 1) {
		t.Fatal("Verify after the commit: a late batch would open a transaction no marker ends")
	}
	want := []string{"__consumer_offsets-0 pid 101 epoch 0 commit true", "t-0 pid 101 epoch 0 commit true", "t-1 pid 101 epoch 0 commit true"}
	if got := m.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("markers %v, want %v", got, want)
	}
	if code := c.EndTxn("a", pid, epoch, true); code != 0 {
		t.Fatalf("a retried commit: %d", code)
	}
	if code := c.EndTxn("a", pid, epoch, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %d", code)
	}
	if got := m.take(); len(got) != 0 {
		t.Fatalf("a retried end wrote markers %v", got)
	}

	// A marker that fails leaves the decision; the retry completes it.
	add(c, "a", pid, epoch, "t", 2)
	m.fail = true
	if code := c.EndTxn("a", pid, epoch, false); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("abort with failing markers: %d", code)
	}
	if code := add(c, "a", pid, epoch, "t", 3); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("add while ending: %d", code)
	}
	m.fail = false
	if code := c.EndTxn("a", pid, epoch, false); code != 0 {
		t.Fatalf("the retried abort: %d", code)
	}
	if got := m.take(); !reflect.DeepEqual(got, []string{"t-2 pid 101 epoch 0 commit false"}) {
		t.Fatalf("markers %v", got)
	}

	// A new incarnation with an open transaction: aborted with a bumped
	// epoch, then the epoch after that.
	add(c, "a", pid, epoch, "t", 0)
	pid2, epoch2 := initPID(t, c, "a", -1, -1)
	if pid2 != pid || epoch2 != 2 {
		t.Fatalf("re-init: %d/%d, want %d/2", pid2, epoch2, pid)
	}
	if got := m.take(); !reflect.DeepEqual(got, []string{"t-0 pid 101 epoch 1 commit false"}) {
		t.Fatalf("the fencing abort's markers %v", got)
	}
	if code := add(c, "a", pid, epoch, "t", 0); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("the fenced producer's add: %d", code)
	}
	if code := c.EndTxn("a", 999, epoch2, true); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("another producer id: %d", code)
	}
	if _, _, code := c.InitProducerID("a", 60000, pid, 0); code != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 init with an old epoch: %d", code)
	}
	if p, e := initPID(t, c, "a", pid, epoch2); p != pid || e != epoch2+1 {
		t.Fatalf("KIP-360 init with the current epoch: %d/%d", p, e)
	}
}

// TestTransactionTimeoutAndRecovery: a transaction past its timeout is
// aborted with a bumped epoch; one a crash left decided but not complete
// is completed after the restart; the state replays, and compacts, to
// the same.
func TestTransactionTimeoutAndRecovery(t *testing.T) {
	c, m, reopen := testCoordinator(t, Config{CompactBytes: 1})
	pid, epoch := initPID(t, c, "slow", -1, -1)
	add(c, "slow", pid, epoch, "t", 0)
	c.Recover(time.Now())
	if got := m.take(); len(got) != 0 {
		t.Fatalf("aborted before its timeout: %v", got)
	}
	c.Recover(time.Now().Add(2 * time.Minute))
	if got := m.take(); !reflect.DeepEqual(got, []string{"t-0 pid 101 epoch 1 commit false"}) {
		t.Fatalf("timeout abort markers %v", got)
	}
	if code := c.EndTxn("slow", pid, epoch, true); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("the timed-out producer's commit: %d", code)
	}
	// KIP-360: the producer re-initialises with the epoch it had.
	if p, e := initPID(t, c, "slow", pid, epoch); p != pid || e != 2 {
		t.Fatalf("re-init after a timeout: %d/%d", p, e)
	}

	pid, epoch = initPID(t, c, "crash", -1, -1)
	add(c, "crash", pid, epoch, "t", 1, 2)
	m.fail = true
	if code := c.EndTxn("crash", pid, epoch, true); code == 0 {
		t.Fatal("commit with failing markers")
	}
	m.fail = false
	before := map[string]meta{}
	for id, x := range c.txns {
		before[id] = x.meta
	}
	pidOpen, epochOpen := initPID(t, c, "open", -1, -1)
	add(c, "open", pidOpen, epochOpen, "t", 3)
	before["open"] = c.txns["open"].meta
	c = reopen()
	if !c.Verify(pidOpen, epochOpen, "t", 3) || c.Verify(pid, epoch, "t", 1) {
		t.Fatal("Verify after a restart: the open transaction, and not the decided one")
	}
	for id, x := range c.txns {
		want := before[id]
		want.lastEpoch = -1 // not stored
		if !sameMeta(x.meta, want) {
			t.Fatalf("%s replayed as %+v, want %+v", id, x.meta, want)
		}
	}
	c.Recover(time.Now())
	if got := m.take(); !reflect.DeepEqual(got, []string{"t-1 pid 102 epoch 0 commit true", "t-2 pid 102 epoch 0 commit true"}) {
		t.Fatalf("markers of the recovered commit %v", got)
	}
	if code := c.EndTxn("crash", pid, epoch, true); code != 0 {
		t.Fatalf("the producer's retried commit after recovery: %d", code)
	}
	if done, err := c.Compact(); !done || err != nil {
		t.Fatalf("compact: %v %v", done, err)
	}
	states := map[string]kmsg.TransactionState{}
	for id, x := range c.txns {
		states[id] = x.status
	}
	c = reopen()
	for id, x := range c.txns {
		if x.status != states[id] {
			t.Fatalf("%s after compaction and restart: %v, want %v", id, x.status, states[id])
		}
	}
	if len(c.txns) != 3 {
		t.Fatalf("%d ids after compaction", len(c.txns))
	}
}

func sameMeta(a, b meta) bool {
	return a.pid == b.pid && a.epoch == b.epoch && a.lastEpoch == b.lastEpoch && a.timeout == b.timeout && a.status == b.status &&
		reflect.DeepEqual(a.parts, b.parts) && a.started.UnixMilli() == b.started.UnixMilli() && a.updated.UnixMilli() == b.updated.UnixMilli()
}

// FuzzApplyRecord: any key and value replay or fail cleanly, and what
// replays writes back.
func FuzzApplyRecord(f *testing.F) {
	r := stateRecord("id", &meta{pid: 1, epoch: 2, timeout: time.Minute, status: Ongoing, parts: map[string]map[int32]bool{"t": {0: true, 3: true}}, updated: time.UnixMilli(5)})
	f.Add(r.Key, r.Value)
	f.Add(r.Key, []byte(nil))
	f.Add([]byte{0, 0}, []byte{0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c := &Coordinator{txns: map[string]*txn{}}
		if err := c.apply(segment.Record{Key: key, Value: value}); err != nil {
			return
		}
		for id, x := range c.txns {
			_ = stateRecord(id, &x.meta)
		}
	})
}

// TestExpireIdleTransactionalIDs: ids with no open transaction go once
// idle for the expiration, durably (not back after a restart); an open
// transaction's id stays however old; an expired id starts over.
func TestExpireIdleTransactionalIDs(t *testing.T) {
	c, _, reopen := testCoordinator(t, Config{})
	pid, epoch := initPID(t, c, "done", -1, -1)
	add(c, "done", pid, epoch, "t", 0)
	if code := c.EndTxn("done", pid, epoch, true); code != 0 {
		t.Fatal(code)
	}
	initPID(t, c, "empty", -1, -1)
	openPID, openEpoch := initPID(t, c, "open", -1, -1)
	add(c, "open", openPID, openEpoch, "t", 1)

	if n, err := c.Expire(time.Now(), DefaultIDExpiration); n != 0 || err != nil {
		t.Fatalf("expired %d (%v) of ids just used", n, err)
	}
	later := time.Now().Add(DefaultIDExpiration + time.Hour)
	if n, err := c.Expire(later, DefaultIDExpiration); n != 2 || err != nil {
		t.Fatalf("expired %d (%v), want the two ids without an open transaction", n, err)
	}
	if _, ok := c.txns["open"]; !ok || len(c.txns) != 1 {
		t.Fatalf("ids left: %v", len(c.txns))
	}
	if code := c.EndTxn("done", pid, epoch, true); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("an expired id's end: %d", code)
	}
	c = reopen()
	if len(c.txns) != 1 || c.txns["open"] == nil {
		t.Fatalf("after a restart, ids: %d", len(c.txns))
	}
	if p, e := initPID(t, c, "done", -1, -1); p == pid || e != 0 {
		t.Fatalf("an expired id starts over: %d/%d", p, e)
	}
}

// TestStateTooLargeForARecord: partitions added beyond what one record of
// the state partition holds are refused with a non-retriable error (a
// retriable one had the client retry forever); the transaction keeps the
// partitions it had and commits them, and its state survives a restart.
func TestStateTooLargeForARecord(t *testing.T) {
	c, m, reopen := testCoordinator(t, Config{PartitionExists: func(topic string, p int32) bool { return topic == "t" || topic == "big" }})
	pid, epoch := initPID(t, c, "a", -1, -1)
	if code := add(c, "a", pid, epoch, "t", 0); code != 0 {
		t.Fatalf("add: %d", code)
	}
	many := make([]int32, segment.DefaultMaxMessageBytes/4)
	for i := range many {
		many[i] = int32(i)
	}
	if code := add(c, "a", pid, epoch, "big", many...); code != kerr.UnknownServerError.Code {
		t.Fatalf("adding %d partitions: code %d, want UNKNOWN_SERVER_ERROR", len(many), code)
	}
	if c.Verify(pid, epoch, "big", 0) || !c.Verify(pid, epoch, "t", 0) {
		t.Fatal("a refused addition changed the transaction's partitions")
	}
	if code := c.EndTxn("a", pid, epoch, true); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if got := m.take(); !reflect.DeepEqual(got, []string{fmt.Sprintf("t-0 pid %d epoch %d commit true", pid, epoch)}) {
		t.Fatalf("markers %v", got)
	}
	c = reopen()
	if in, ok := c.Describe("a"); !ok || in.State != CompleteCommit {
		t.Fatalf("after a restart: %+v", in)
	}
}
