package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/server"
)

// A reload (SIGHUP, systemctl reload) reads again what can change without
// a restart: the token files, the TLS certificate and key (checked as at
// start, against the CA read at start), and the log level from the
// --config file. It checks all of it first: bad new material changes
// nothing. A setting of the config file that changed but needs a restart
// is logged and otherwise ignored. A reload never stops the daemon.

// reloadState is what reloads share with the parts they change.
type reloadState struct {
	mu      sync.Mutex // one reload at a time
	tokens  *server.Tokens
	level   *slog.LevelVar
	cmdline map[string][]string // the command line's flags: they win over the file
	values  map[string]string   // every flag's value in force
}

// start arms reloads once the daemon is up.
func (r *reloadState) start(cmdline map[string][]string, values map[string]string, level *slog.LevelVar) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmdline, r.values, r.level = cmdline, values, level
}

// reloadable tells the settings a reload applies.
func reloadable(name string) bool {
	switch name {
	case "log-level", "token-file", "read-token-file", "tls-cert", "tls-key":
		return true
	}
	return false
}

// settingChanges compares the settings in force with a reload's, by flag
// name: those a reload applies and those that need a restart, sorted.
func settingChanges(old, now map[string]string) (apply, restart []string) {
	for _, name := range slices.Sorted(maps.Keys(now)) {
		if v, ok := old[name]; ok && v == now[name] {
			continue
		}
		if reloadable(name) {
			apply = append(apply, name)
		} else {
			restart = append(restart, name)
		}
	}
	return apply, restart
}

// reloadOn reloads on every signal from hup until ctx ends.
func (d *daemon) reloadOn(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			d.reloadNow(time.Now())
		}
	}
}

// reloadNow reloads and logs one line saying what changed, or an error
// naming the flag and the file: then nothing changed.
func (d *daemon) reloadNow(now time.Time) {
	changed, restart, err := d.reloadSettings(now)
	if len(restart) > 0 {
		d.log.Warn("config file: a changed setting needs a restart; ignored until then", "node", d.o.nodeID, "settings", restart)
	}
	if err != nil {
		d.log.Error("reload refused: nothing changed, the settings in force stay", "node", d.o.nodeID, "err", err)
		return
	}
	// The level the line itself is logged at: seen whatever the new one.
	lv := max(slog.LevelInfo, d.reload.level.Level())
	attrs := []any{"node", d.o.nodeID}
	if d.tls != nil {
		sum := sha256.Sum256(d.tls.Current().Certificate[0])
		attrs = append(attrs, "certificate_sha256", hex.EncodeToString(sum[:]))
	}
	if len(changed) == 0 {
		d.log.Log(context.Background(), lv, "reloaded: nothing changed", attrs...)
		return
	}
	d.log.Log(context.Background(), lv, "reloaded", append(attrs, "changed", changed)...)
}

// reloadSettings reads and checks every reloadable setting, then applies
// them all; on an error it applies none. It returns what changed and the
// config file's settings that need a restart.
func (d *daemon) reloadSettings(now time.Time) (changed, restart []string, err error) {
	r := &d.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	o, values, err := loadOptions(r.cmdline, d.o.config)
	if err != nil {
		return nil, nil, err
	}
	_, restart = settingChanges(r.values, values)
	if d.tls == nil {
		// TLS on or off is decided at start.
		for _, name := range []string{"tls-cert", "tls-key"} {
			if values[name] != r.values[name] {
				restart = append(restart, name)
			}
		}
		slices.Sort(restart)
	}
	// Check everything first.
	lv, err := parseLevel(o.logLevel)
	if err != nil {
		return nil, restart, fmt.Errorf("--config %q: %w", d.o.config, err)
	}
	admin, err := readToken("--token-file", o.tokenFile)
	if err != nil {
		return nil, restart, err
	}
	read, err := readOnlyToken(o.readTokenFile, admin)
	if err != nil {
		return nil, restart, err
	}
	var pair *tls.Certificate
	if d.tls != nil {
		if pair, err = d.tls.LoadPair(o.tlsCert, o.tlsKey, now); err != nil {
			return nil, restart, err
		}
	}
	wasAdmin, wasRead := r.tokens.Admin(), r.tokens.Read()
	// The last check, and the first change: the tokens.
	nowAdmin, nowRead, err := r.tokens.Rotate(admin, read)
	if err != nil {
		return nil, restart, fmt.Errorf("--read-token-file %q: %w", o.readTokenFile, err)
	}
	changed = append(changed, tokenChanges("cluster token", wasAdmin, nowAdmin)...)
	changed = append(changed, tokenChanges("read-only token", wasRead, nowRead)...)
	if pair != nil && d.tls.Use(pair) {
		changed = append(changed, "tls certificate")
	}
	if was := r.level.Level(); was != lv {
		r.level.Set(lv)
		changed = append(changed, fmt.Sprintf("log level %s→%s", strings.ToLower(was.String()), strings.ToLower(lv.String())))
	}
	d.rotateGossipKey(nowAdmin)
	// What needs a restart stays as it was in force, so that the next
	// reload says so again.
	for _, name := range restart {
		values[name] = r.values[name]
	}
	r.values = values
	return changed, restart, nil
}

// tokenChanges says how a token's rotation moved.
func tokenChanges(what string, was, now server.Rotation) []string {
	switch {
	case was == now:
		return nil
	case now.Rotating() && now.Current != was.Current:
		return []string{what + " (new; the previous one is still accepted, and sent to the other nodes, until the next reload)"}
	case was.Rotating() && !now.Rotating() && now.Current == was.Current:
		return []string{what + " rotation finished (the previous one is no longer accepted)"}
	}
	return []string{what}
}

// rotateGossipKey follows the cluster token's rotation in gossip: a new
// token's key is installed to read with while a rotation is under way,
// and becomes the key this node sends with once it is over. The keys
// before stay installed until restart.
func (d *daemon) rotateGossipKey(admin server.Rotation) {
	if d.node == nil {
		return
	}
	key := cluster.GossipKey(admin.Current)
	var err error
	switch {
	case admin.Rotating():
		err = d.node.InstallGossipKey(key)
	case !d.node.GossipPrimaryKey(key):
		err = d.node.UseGossipKey(key)
	}
	if err != nil {
		d.log.Warn("gossip key rotation", "node", d.o.nodeID, "err", err)
	}
}
