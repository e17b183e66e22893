package engine

import (
	"errors"
	"fmt"
	"math/bits"
)

// Host is the agent that serves one or more participant Nodes over one
// link to the coordinator: it decodes each inbound message, hands it to
// the node it names (or to every node, for a broadcast), fires the nodes'
// timers, and sends what they answer, one ring publish per duty cycle.
// Putting several nodes behind one Host is how participants share a
// process and a thread.
type Host struct {
	conn  *Conn
	clock Clock
	nodes []*Node
	byID  [MaxParticipants]*Node
	msg   Msg
	// merged is the message flush sends for several nodes at once.
	merged Msg
	buf    msgBuf
	now    int64
	err    error
	read   func(uint16, []byte)
	// Dropped counts messages lost to a full outbound ring.
	dropped uint64
}

// NewHost returns a Host serving nodes over conn.
func NewHost(conn *Conn, clock Clock, nodes ...*Node) (*Host, error) {
	if conn == nil || clock == nil || len(nodes) == 0 {
		return nil, errors.New("new host: needs a conn, a clock and at least one node")
	}
	h := &Host{conn: conn, clock: clock, nodes: nodes}
	for _, n := range nodes {
		id := n.cfg.ID
		if h.byID[id] != nil {
			return nil, fmt.Errorf("new host: two nodes with id %d", id)
		}
		h.byID[id] = n
	}
	h.read = h.onRecord
	return h, nil
}

// Dropped returns the number of messages lost to a full outbound ring.
func (h *Host) Dropped() uint64 { return h.dropped }

// DoWork runs one duty cycle.
func (h *Host) DoWork() (int, error) {
	h.now = h.clock.Now()
	n, err := h.conn.Rx.Read(256, h.read)
	if err == nil {
		err = h.err
	}
	if err != nil {
		return n, fmt.Errorf("host: %w", err)
	}
	checked, alive := false, true
	pending := false
	for _, nd := range h.nodes {
		if at, _, ok := nd.timers.next(); ok && h.now >= at {
			if !checked && h.conn.Alive != nil {
				checked, alive = true, h.conn.Alive()
			}
			nd.SetCoordinatorAlive(alive)
			nd.Tick(h.now)
		}
		pending = pending || len(nd.ready.Msgs) != 0
	}
	if !pending {
		return n, nil // an idle cycle stays short: it is the polling delay
	}
	sent, err := h.flush()
	if err != nil {
		return n, fmt.Errorf("host: %w", err)
	}
	for _, nd := range h.nodes {
		nd.Advance()
	}
	h.conn.Tx.Commit()
	return n + sent, nil
}

// flush sends what the nodes' Readys hold. The nodes answer the same
// broadcasts, so their i-th messages are often the same ack or the same
// outcome-less vote, or the same run of them: those go as one message with
// Senders set. Each node's messages keep their order.
func (h *Host) flush() (int, error) {
	var all [MaxParticipants][]Msg
	longest := 0
	for j, nd := range h.nodes {
		nd.ready.fold() // the last message, now complete, may continue a run
		all[j] = nd.ready.Msgs
		longest = max(longest, len(all[j]))
	}
	nodes := all[:len(h.nodes)]
	sent := 0
	for i := range longest {
		var done uint32 // nodes whose i-th message went merged
		for j, msgs := range nodes {
			if i >= len(msgs) || done&(1<<j) != 0 {
				continue
			}
			m := &msgs[i]
			if mergeable(m) {
				senders := uint16(1) << m.From
				for k := j + 1; k < len(nodes); k++ {
					if o := nodes[k]; i < len(o) && mergeable(&o[i]) && sameReply(m, &o[i]) {
						senders |= 1 << o[i].From
						done |= 1 << k
					}
				}
				if senders != 1<<m.From {
					g := &h.merged // field by field: a Msg literal would clear a kilobyte of Outcome
					g.Type, g.To, g.Epoch, g.Tx, g.Run, g.Reason, g.HasOutcome = m.Type, m.To, m.Epoch, m.Tx, m.Run, m.Reason, false
					g.From, g.Senders = NodeID(bits.TrailingZeros16(senders)), senders
					m = g
				}
			}
			if err := h.send(m); err != nil {
				return sent, err
			}
			sent++
		}
	}
	return sent, nil
}

func (h *Host) send(m *Msg) error {
	ok, err := h.conn.send(m)
	if !ok && err == nil {
		h.dropped++
	}
	return err
}

// mergeable reports whether m may share a message with other nodes'.
func mergeable(m *Msg) bool { return !m.HasOutcome && m.Senders == 0 }

// sameReply reports whether replies a and b, of two nodes (NewHost refuses
// two with one id) to the coordinator, say the same thing.
func sameReply(a, b *Msg) bool {
	return a.Type == b.Type && a.Tx == b.Tx && a.Run == b.Run && a.Epoch == b.Epoch && a.Reason == b.Reason
}

func (h *Host) onRecord(typ uint16, p []byte) {
	if h.err != nil {
		return
	}
	if err := h.conn.decode(&h.msg, &h.buf, typ, p); err != nil {
		h.err = err
		return
	}
	if h.msg.To == Broadcast {
		for _, nd := range h.nodes {
			if err := nd.Step(h.now, &h.msg); err != nil {
				h.err = err
				return
			}
		}
		return
	}
	var nd *Node
	if h.msg.To < MaxParticipants {
		nd = h.byID[h.msg.To]
	}
	if nd == nil {
		h.err = fmt.Errorf("%w: %v for node %d, not hosted here", ErrMisrouted, h.msg.Type, h.msg.To)
		return
	}
	h.err = nd.Step(h.now, &h.msg)
}
