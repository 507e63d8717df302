package api

import (
	"context"
	"log/slog"
	"time"
)

// JoinLoop asks the member at c.Base to add the node req names, retrying
// with backoff until it succeeds or ctx ends. Joining again is harmless
// (Raft ignores an unchanged voter), so a restarted node runs it too and
// so refreshes its recorded addresses.
//
// A join the cluster refuses (rejected: a live member holds the ID at
// another address, a dead one does and req has no Replace, an address is
// malformed; forbidden: the certificate names another node, or none) is
// not retried: it returns the error, which names what to change.
func JoinLoop(ctx context.Context, c *Client, req JoinRequest, log *slog.Logger) error {
	backoff := 100 * time.Millisecond
	self := req.Member
	for {
		err := c.Join(ctx, req)
		if err == nil {
			log.Info("joined the cluster", "node", self.ID, "via", c.Base, "replace", req.Replace)
			return nil
		}
		if e, ok := err.(*Error); ok && (e.Kind == "rejected" || e.Kind == "forbidden") {
			log.Error("join refused", "node", self.ID, "via", c.Base, "kind", e.Kind, "err", err)
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
