package group

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a group's state, named as Kafka's DescribeGroups and ListGroups
// report it.
type State int8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	}
	return "Dead"
}

// ParseState is String's inverse, for ListGroups' state filter (case
// insensitive, as Kafka's).
func ParseState(s string) (State, bool) {
	for st := Empty; st <= Dead; st++ {
		if strings.EqualFold(st.String(), s) {
			return st, true
		}
	}
	return 0, false
}

// group is one consumer group: its members and generation (the classic
// protocol's state machine, as Kafka's GroupMetadata) and its committed
// offsets. Everything in it is guarded by the coordinator's lock.
type group struct {
	name         string
	state        State
	protocolType string // of the members; "" for a group that only commits offsets
	protocol     string // chosen at the last completed join
	generation   int32
	leader       string
	members      map[string]*member
	instances    map[string]string    // group.instance.id → member id
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED, until when
	stateSince   time.Time

	// rebalanceSeq identifies the current rebalance, so that timers of an
	// earlier one do nothing.
	rebalanceSeq   uint64
	rebalanceTimer *time.Timer
	delayUntil     time.Time // the initial rebalance delay of a group that was empty
	delayLimit     time.Time
	delayTimer     *time.Timer

	offsets map[string]map[int32]offset // topic → partition → committed
}

// member is a member of a group.
type member struct {
	id, instanceID       string // instanceID "" for a dynamic member
	clientID, clientHost string
	protocolType         string
	protocols            []kmsg.JoinGroupRequestProtocol
	session, rebalance   time.Duration
	assignment           []byte

	deadline time.Time // session expiry, pushed by every request of the member
	timer    *time.Timer
	isNew    bool
	joinSeq  uint64 // order of the last join, for choosing a leader
	synced   bool   // sent SyncGroup for the current generation

	// A member's JoinGroup or SyncGroup waiting to be answered.
	joinWait chan *kmsg.JoinGroupResponse
	syncWait chan *kmsg.SyncGroupResponse
}

// offset is a committed offset and the offsets-log position of the record
// that committed it (later records win).
type offset struct {
	at          int64
	offset      int64
	leaderEpoch int32
	metadata    string
	timestamp   int64
}

func newGroup(name string, now time.Time) *group {
	return &group{
		name: name, state: Empty, stateSince: now,
		members: map[string]*member{}, instances: map[string]string{}, pending: map[string]time.Time{},
		offsets: map[string]map[int32]offset{},
	}
}

func (g *group) setState(s State, now time.Time) {
	g.state = s
	g.stateSince = now
}

// supports reports whether every member supports one of protocols, under
// protocolType: the condition for a new member to join.
func (g *group) supports(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) == 0 || protocolType == "" {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.allSupport(p.Name) {
			return true
		}
	}
	return false
}

// allSupport reports whether every member supports the protocol.
func (g *group) allSupport(name string) bool {
	for _, m := range g.members {
		if !m.supports(name) {
			return false
		}
	}
	return true
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol every member supports that most
// members prefer (each votes for the first of its own list that all
// support), as Kafka does. Ties go to the leader's preference order.
func (g *group) selectProtocol(leader *member) string {
	var candidates []string
	for _, p := range leader.protocols {
		if g.allSupport(p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allJoined reports whether the join phase can complete: every member has
// rejoined and no member id handed out is still expected.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			return false
		}
	}
	return true
}

// maxRebalance is the longest rebalance timeout of the members: how long a
// join phase waits for them.
func (g *group) maxRebalance() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}
