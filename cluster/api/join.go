package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// JoinLoop asks the member at c.Base to add self, retrying with backoff
// until it succeeds or ctx ends. Joining again is harmless (Raft ignores an
// unchanged voter), so a restarted node runs it too and so refreshes its
// recorded addresses.
func JoinLoop(ctx context.Context, c *Client, self fsm.Member, log *slog.Logger) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.Join(ctx, self)
		if err == nil {
			log.Info("joined the cluster", "node", self.ID, "via", c.Base)
			return nil
		}
		if e, ok := err.(*Error); ok && e.Kind == "rejected" {
			log.Error("join rejected", "node", self.ID, "via", c.Base, "err", err)
			return err
		}
		log.Warn("join failed, retrying", "node", self.ID, "via", c.Base, "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
