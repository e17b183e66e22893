package engine

import (
	"errors"
	"fmt"
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
	buf   msgBuf
	now   int64
	err   error
	read  func(uint16, []byte)
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
	for _, nd := range h.nodes {
		if d := nd.Ready().Deadline; d != 0 && h.now >= d {
			if !checked && h.conn.Alive != nil {
				checked, alive = true, h.conn.Alive()
			}
			nd.SetCoordinatorAlive(alive)
			nd.Tick(h.now)
		}
	}
	sent := 0
	for _, nd := range h.nodes {
		rd := nd.Ready()
		for i := range rd.Msgs {
			ok, err := h.conn.send(&rd.Msgs[i])
			if err != nil {
				return n, fmt.Errorf("host: %w", err)
			}
			if !ok {
				h.dropped++
			}
			sent++
		}
		nd.Advance()
	}
	h.conn.Tx.Commit()
	return n + sent, nil
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
