package top

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// The screen, top to bottom: a header (node shown, leader, VIP owner,
// applied index, fingerprints, time), the kernel line (whose counters, or
// why there are none), the column titles, the table (or the picker), the
// cluster pane when toggled, the selected row's details, the status line
// and the keys. Everything but the table has a fixed height, so the table
// scrolls and the screen fits 80x24.
const fixedLines = 6 // header, kernel, titles, detail, status (first line), keys

type styles struct {
	header, cursor, err, dim, alarm, title lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	return styles{
		header: r.NewStyle().Bold(true),
		cursor: r.NewStyle().Reverse(true),
		err:    r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true),
		dim:    r.NewStyle().Faint(true),
		alarm:  r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true).Reverse(true),
		title:  r.NewStyle().Underline(true),
	}
}

// Column widths of the table; the server column takes what a wider
// terminal gives.
const (
	wFwd, wWeight, wHealth, wState, wAct, wInact, wCPS, wBPS = 6, 5, 7, 9, 5, 5, 6, 7
	wServerMin                                               = 19
)

func (m *Model) serverWidth() int { return min(45, wServerMin+max(0, m.width-80)) }

// wrap cuts s into lines of the terminal's width, at most n of them.
func (m *Model) wrap(s string, n int) []string {
	if s == "" {
		return []string{""}
	}
	w := max(20, m.width)
	lines := strings.Split(ansi.Hardwrap(ansi.Wordwrap(s, w, " /:,"), w, true), "\n")
	return lines[:min(len(lines), n)]
}

// statusLines is the status message, at most three lines.
func (m *Model) statusLines() []string { return m.wrap(m.status, 3) }

// bodyHeight is how many table rows fit.
func (m *Model) bodyHeight() int {
	h := m.height - fixedLines - (len(m.statusLines()) - 1) - (len(m.kernelLines()) - 1)
	if m.showCluster {
		h -= len(m.clusterPane())
	}
	return max(1, h)
}

// View draws the screen.
func (m *Model) View() string {
	var out []string
	out = append(out, m.st.header.Render(m.fit(printable(m.headerLine()))))
	out = append(out, m.kernelLines()...)
	titles := m.columns("  SERVER", "FWD", "WGT", "HEALTH", "STATE", "ACT", "INACT", "CONN/S", "BYTES/S")
	if m.mode == modePick {
		titles = fmt.Sprintf("  %-22s %-6s %-6s %s", "REAL SERVER", "FWD", "WEIGHT", "IN SERVICE")
	}
	out = append(out, m.st.title.Render(m.fit(titles)))
	body := m.body()
	for len(body) < m.bodyHeight() {
		body = append(body, "")
	}
	out = append(out, body...)
	if m.showCluster {
		out = append(out, m.clusterPane()...)
	}
	out = append(out, m.fit(printable(m.detailLine())))
	for _, l := range m.statusLines() {
		if m.isErr {
			l = m.st.err.Render(m.fit(l))
		}
		out = append(out, l)
	}
	out = append(out, m.st.dim.Render(m.fit(m.helpLine())))
	if len(out) > m.height && m.height > 0 {
		out = out[:m.height]
	}
	return strings.Join(out, "\n")
}

// fit cuts a plain line to the terminal's width.
func (m *Model) fit(s string) string { return ansi.Truncate(s, max(1, m.width), "") }

// cell pads or cuts s to exactly w columns; a cut shows as "~".
func cell(s string, w int) string {
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "~")
	}
	return s + strings.Repeat(" ", w-ansi.StringWidth(s))
}

func rcell(s string, w int) string {
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "~")
	}
	return strings.Repeat(" ", w-ansi.StringWidth(s)) + s
}

// columns lays out one table line: the first cell (marker and server)
// then fwd, weight, health, state and the four numbers.
func (m *Model) columns(first, fwd, weight, health, state, act, inact, cps, bps string) string {
	return strings.Join([]string{
		cell(first, 2+m.serverWidth()), cell(fwd, wFwd), rcell(weight, wWeight), cell(health, wHealth), cell(state, wState),
		rcell(act, wAct), rcell(inact, wInact), rcell(cps, wCPS), rcell(bps, wBPS),
	}, " ")
}

func (m *Model) headerLine() string {
	left := fmt.Sprintf("node %s  leader %s  VIP %s  applied %s  fp %s", dash(m.node), m.leader(), m.vipOwner(), m.applied(), m.fingerprints())
	clock := m.now().Format("15:04:05")
	pad := m.width - ansi.StringWidth(left) - len(clock)
	if pad < 1 {
		return left
	}
	return left + strings.Repeat(" ", pad) + clock
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// kernelLines say whose counters the table shows, or why it shows none,
// and whether the last refresh failed or is slow: at most two lines.
func (m *Model) kernelLines() []string {
	var s string
	switch {
	case !m.haveSnap:
		s = "waiting for the API's first answer"
	case m.node != m.snap.KernelNode:
		s = fmt.Sprintf("kernel view of %s: waiting for the API", m.node)
	case m.snap.KernelErr != "":
		s = fmt.Sprintf("kernel view unavailable on %s: %s", m.node, m.snap.KernelErr)
	default:
		s = fmt.Sprintf("kernel view of %s: counters of %s", m.node, m.snap.At.Format("15:04:05"))
		if m.rates == nil {
			s += " (rates from the next refresh)"
		}
	}
	if m.haveSnap && m.snap.Stale != "" {
		s += "; model from " + m.snap.Via + " may be behind: " + m.snap.Stale
	}
	if m.fetchErr != "" {
		lines := m.wrap("refresh failed: "+m.fetchErr, 2)
		for i, l := range lines {
			lines[i] = m.st.err.Render(l)
		}
		return lines
	}
	if m.fetching && m.now().Sub(m.askedAt) > 3*m.interval {
		s = fmt.Sprintf("API slow: no answer for %s; ", m.now().Sub(m.askedAt).Round(m.interval)) + s
	}
	return m.wrap(printable(s), 2)
}

// body is the table's visible rows, or the picker.
func (m *Model) body() []string {
	h := m.bodyHeight()
	if m.mode == modePick {
		return m.pickerLines(h)
	}
	if m.haveSnap && len(m.rows) == 0 {
		return []string{"  no services: add one with ipvsman -A"}
	}
	var out []string
	for i := m.top; i < len(m.rows) && i < m.top+h; i++ {
		line := m.fit(m.rowLine(m.rows[i], i == m.cursor))
		if i == m.cursor {
			line = m.st.cursor.Render(line)
		}
		out = append(out, line)
	}
	return out
}

func (m *Model) rowLine(r row, cur bool) string {
	mark := "  "
	if cur {
		mark = "> "
	}
	svc := m.cfg.Services[r.service]
	if svc == nil {
		return mark + r.service
	}
	act, inact, cps, bps := m.numbers(r.service)
	if r.server == "" {
		return cell(mark+serviceLabel(svc), 2+m.serverWidth()+1+wFwd+1+wWeight+1+wHealth+1+wState) + " " +
			strings.Join([]string{rcell(act, wAct), rcell(inact, wInact), rcell(cps, wCPS), rcell(bps, wBPS)}, " ")
	}
	rs := svc.Servers[r.server]
	if r.pool {
		rs = svc.Pool[r.server]
	}
	if rs == nil {
		return mark + "  " + r.server
	}
	name := "  " + r.server
	if rs.Name != "" && ansi.StringWidth(name)+2 < m.serverWidth() {
		name += " " + rs.Name
	}
	if r.pool {
		// In no kernel table and not checked: no health, no counters.
		return m.columns(mark+name, ipvsadm.ForwardName(rs.Forward), fmt.Sprint(rs.Weight), "-", "pool", "-", "-", "-", "-")
	}
	act, inact, cps, bps = m.numbers(fsm.VerdictKey(r.service, r.server))
	return m.columns(mark+name, ipvsadm.ForwardName(rs.Forward), fmt.Sprint(rs.Weight), m.health(svc, r.server, rs), string(rs.State), act, inact, cps, bps)
}

// numbers are a key's kernel counters and rates, "-" where unknown.
func (m *Model) numbers(key string) (act, inact, cps, bps string) {
	act, inact, cps, bps = "-", "-", "-", "-"
	if m.kernel == nil || m.kernelFor != m.node {
		return
	}
	if c, ok := m.kernel[key]; ok {
		act, inact = count(c.ActiveConns), count(c.InactConns)
	}
	if r, ok := m.rates[key]; ok {
		cps, bps = human(r.Conns), human(r.Bytes())
	}
	return
}

// serviceLabel is the service as ipvsadm -L names it: "TCP  10.0.0.1:80
// wlc persistent 300 (web)".
func serviceLabel(s *fsm.Service) string {
	k := s.Key
	var b strings.Builder
	switch k.Protocol {
	case fsm.FWMark:
		fmt.Fprintf(&b, "FWM  %d", k.Mark)
		if k.IPv6 {
			b.WriteString(" IPv6")
		}
	default:
		fmt.Fprintf(&b, "%s  %s:%d", strings.ToUpper(string(k.Protocol)), bracket(k), k.Port)
	}
	b.WriteString(" " + s.Scheduler)
	if s.Persistence != nil {
		fmt.Fprintf(&b, " persistent %d", s.Persistence.Timeout)
	}
	if s.Name != "" {
		b.WriteString(" (" + s.Name + ")")
	}
	return b.String()
}

func bracket(k fsm.ServiceKey) string {
	if k.Address.Is6() {
		return "[" + k.Address.String() + "]"
	}
	return k.Address.String()
}

// health is the replicated verdict: up, down, unknown (checked, no verdict
// yet) or "-" (not checked).
func (m *Model) health(svc *fsm.Service, key string, rs *fsm.RealServer) string {
	if v, ok := m.snap.Verdicts[fsm.VerdictKey(svc.Key.String(), key)]; ok && v.Health != "" {
		return string(v.Health)
	}
	if svc.Check != nil || rs.Check != nil {
		return string(fsm.HealthUnknown)
	}
	return "-"
}

func (m *Model) pickerLines(h int) []string {
	top := max(0, m.pickCur-h+1)
	var out []string
	for i := top; i < len(m.picks) && len(out) < h; i++ {
		c := m.picks[i]
		mark := "  "
		if i == m.pickCur {
			mark = "> "
		}
		rs := c.server
		from := c.from
		switch {
		case c.own:
			from = "its pool"
		case c.pooled:
			from += " (pool)"
		}
		line := m.fit(fmt.Sprintf("%s%-22s %-6s %6d %s", mark, rs.Key(), ipvsadm.ForwardName(rs.Forward), rs.Weight, from))
		if i == m.pickCur {
			line = m.st.cursor.Render(line)
		}
		out = append(out, line)
	}
	return out
}

func (m *Model) detailLine() string {
	r, ok := m.selected()
	if !ok || m.mode == modePick {
		return ""
	}
	svc := m.cfg.Services[r.service]
	if svc == nil {
		return ""
	}
	if r.server == "" {
		usable := 0
		for k, rs := range svc.Servers {
			if rs.State == fsm.Active && m.snap.Verdicts[fsm.VerdictKey(r.service, k)].Health != fsm.HealthDown {
				usable++
			}
		}
		s := fmt.Sprintf("%s: %d real servers, %d usable", r.service, len(svc.Servers), usable)
		if len(svc.Pool) > 0 {
			s += fmt.Sprintf(", %d in the pool", len(svc.Pool))
		}
		if svc.Check != nil {
			s += ", check " + svc.Check.Type
		}
		if len(svc.Group) > 0 {
			// A group's members are kernel services of their own with
			// these very servers (fsm/group.go): named here, not as rows.
			members := make([]string, len(svc.Group))
			for i, k := range svc.Group {
				members[i] = k.String()
			}
			s += "; also on " + strings.Join(members, ", ")
		}
		return s
	}
	if r.pool {
		p := svc.Pool[r.server]
		if p == nil {
			return ""
		}
		s := r.server
		if p.Name != "" {
			s += " (" + p.Name + ")"
		}
		s += fmt.Sprintf(" of %s: in its pool, not assigned: in no kernel table", r.service)
		if p.State != fsm.Active {
			s += "; " + string(p.State) + " once assigned"
		}
		return s
	}
	rs := svc.Servers[r.server]
	if rs == nil {
		return ""
	}
	s := r.server
	if rs.Name != "" {
		s += " (" + rs.Name + ")"
	}
	if d, ok := m.desired[r.service].Dests[r.server]; ok {
		s += fmt.Sprintf(" of %s: kernel weight %d", r.service, d.Weight)
	} else {
		s += fmt.Sprintf(" of %s: out of the kernel table (on_failure remove)", r.service)
	}
	if rs.Upper > 0 || rs.Lower > 0 {
		s += fmt.Sprintf(", thresholds %d/%d", rs.Upper, rs.Lower)
	}
	if rt, ok := m.rates[fsm.VerdictKey(r.service, r.server)]; ok && m.kernelFor == m.node {
		s += fmt.Sprintf(", in %sB/s out %sB/s", human(rt.InBytes), human(rt.OutBytes))
	}
	if v, ok := m.snap.Verdicts[fsm.VerdictKey(r.service, r.server)]; ok && v.Reason != "" {
		s += "; " + string(v.Health) + ": " + v.Reason
	}
	return s
}

func (m *Model) helpLine() string {
	switch m.mode {
	case modePick:
		return "j/k move  enter assign  esc cancel"
	case modeConfirm:
		return "y " + m.confirmVerb + "  any other key cancels"
	}
	// The keys that act on the selected row: the whole list is wider
	// than 80 columns.
	r, _ := m.selected()
	switch {
	case r.pool:
		return "a assign  x forget  j/k move  n node  c cluster  q quit"
	case r.server != "":
		return "+/- weight  s/r suspend/resume  a assign  d unassign  x delete  n/c node/cluster"
	}
	return "a assign a real server  j/k move  n node  c cluster  q quit"
}
