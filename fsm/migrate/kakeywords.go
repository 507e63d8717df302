package migrate

// kaKeyword reads one statement n of a keepalived block into dst, the
// value the block builds. It reports what it cannot import itself.
type kaKeyword[T any] func(k *kaMapper, dst T, n *node)

// kaKeywords is a block's keyword table: every keyword the import knows,
// whether it maps it or only says why not. A keyword that is not in the
// table is listed as unknown by read, so that nothing is dropped silently.
type kaKeywords[T any] map[string]kaKeyword[T]

// read dispatches n by its keyword; an unknown one is listed with reason
// unknown.
func (t kaKeywords[T]) read(k *kaMapper, dst T, n *node, unknown string) {
	if h, ok := t[n.key()]; ok {
		h(k, dst, n)
		return
	}
	k.bad(n, unknown)
}

// kaNot is a keyword ipvsman has no counterpart for: listed with why.
func kaNot[T any](why string) kaKeyword[T] {
	return func(k *kaMapper, _ T, n *node) { k.bad(n, why) }
}

// kaOne is a keyword of exactly one value.
func kaOne[T any](set func(dst T, s string)) kaKeyword[T] {
	return func(k *kaMapper, dst T, n *node) {
		if s, ok := k.one(n); ok {
			set(dst, s)
		}
	}
}

// kaUint is a keyword of one whole number within lo-hi.
func kaUint[T any](lo, hi uint64, set func(dst T, v uint64)) kaKeyword[T] {
	return func(k *kaMapper, dst T, n *node) {
		if v, ok := k.uint(n, lo, hi); ok {
			set(dst, v)
		}
	}
}

// kaSeconds is a keyword of one duration in seconds.
func kaSeconds[T any](set func(dst T, v float64)) kaKeyword[T] {
	return func(k *kaMapper, dst T, n *node) {
		if v, ok := k.seconds(n); ok {
			set(dst, v)
		}
	}
}

// kaTimingKeywords are the checker settings every level may give (see
// kaTiming); the notes are for settings ipvsman's checker has no use for.
var kaTimingKeywords = kaKeywords[*kaTiming]{
	"delay_loop":         kaSeconds(func(t *kaTiming, v float64) { t.delayLoop = &v }),
	"connect_timeout":    kaSeconds(func(t *kaTiming, v float64) { t.connTimeout = &v }),
	"retry":              kaRetry,
	"nb_get_retry":       kaRetry,
	"virtualhost":        kaOne(func(t *kaTiming, s string) { t.vhost = &s }),
	"inhibit_on_failure": kaFlag(func(t *kaTiming, v bool) { t.inhibit = &v }),
	// alpha: a new real server starts down until its first check passes.
	"alpha":              kaFlag(func(t *kaTiming, v bool) { t.alpha = &v }),
	"delay_before_retry": kaSeconds(func(t *kaTiming, v float64) { t.retryDelay = &v }),
	"warmup":             kaNot[*kaTiming]("ipvsman starts checks without a random warmup delay"),
	"smtp_alert":         kaNot[*kaTiming](kaNoMail),
	"log_all_failures":   kaNot[*kaTiming](kaNoMail),
}

const kaNoMail = "ipvsman sends no mail; watch `ipvsman health` or the metrics"

var kaRetry = kaUint(0, 1<<31, func(t *kaTiming, v uint64) {
	i := int(v)
	t.retry = &i
})

// kaFlag reads a keyword that is on by itself or takes on|off (true,
// yes, ...), as keepalived's inhibit_on_failure and alpha do.
func kaFlag(set func(*kaTiming, bool)) func(*kaMapper, *kaTiming, *node) {
	return func(k *kaMapper, t *kaTiming, n *node) {
		v := true
		if len(n.args()) > 0 {
			b, ok := parseBool(n.args()[0])
			if !ok {
				k.bad(n, "want on|off|true|false|yes|no")
				return
			}
			v = b
		}
		set(t, v)
	}
}

// timing reads a timing keyword into t; false if n is not one.
func (k *kaMapper) timing(n *node, t *kaTiming) bool {
	h, ok := kaTimingKeywords[n.key()]
	if ok {
		h(k, t, n)
	}
	return ok
}
