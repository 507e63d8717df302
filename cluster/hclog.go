package cluster

import (
	"context"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter lets raft (which wants an hclog.Logger) write through slog, so
// the daemon has one structured log stream.
type slogAdapter struct {
	l     *slog.Logger
	name  string
	level hclog.Level
	args  []any
	sum   *summary
}

// NewHCLog adapts l for hashicorp libraries; level filters their chatter
// (raft logs at DEBUG by default).
func NewHCLog(l *slog.Logger, name string, level hclog.Level) hclog.Logger {
	return &slogAdapter{l: l.With("component", name), name: name, level: level, sum: newSummary(time.Now)}
}

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level < a.level {
		return
	}
	if level >= hclog.Warn {
		ok, repeated := a.sum.admit(args)
		if !ok {
			return
		}
		if repeated > 0 {
			args = append(args[:len(args):len(args)], "repeated", repeated, "window", summaryWindow.String())
		}
	}
	a.l.Log(context.Background(), toSlog(level), msg, args...)
}
func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *slogAdapter) IsTrace() bool                 { return a.level <= hclog.Trace }
func (a *slogAdapter) IsDebug() bool                 { return a.level <= hclog.Debug }
func (a *slogAdapter) IsInfo() bool                  { return a.level <= hclog.Info }
func (a *slogAdapter) IsWarn() bool                  { return a.level <= hclog.Warn }
func (a *slogAdapter) IsError() bool                 { return a.level <= hclog.Error }
func (a *slogAdapter) ImpliedArgs() []any            { return a.args }
func (a *slogAdapter) Name() string                  { return a.name }
func (a *slogAdapter) SetLevel(level hclog.Level)    { a.level = level }
func (a *slogAdapter) GetLevel() hclog.Level         { return a.level }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	n := *a
	n.l = a.l.With(args...)
	n.args = append(append([]any(nil), a.args...), args...)
	return &n
}

func (a *slogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	n := *a
	n.name = name
	n.l = a.l.With("component", name)
	return &n
}

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return slog.NewLogLogger(a.l.Handler(), toSlog(a.level)).Writer()
}
