package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
)

// overviewCacheFor is how long an overview is reused: the page refreshes
// every few seconds in every open browser, and each overview reads a day
// of events.
const overviewCacheFor = 3 * time.Second

// queryTimeout bounds the database reads of one page.
const queryTimeout = 10 * time.Second

// maxFilter bounds a filter's value from a URL.
const maxFilter = 256

// overviewCache holds the last overview.
type overviewCache struct {
	mu sync.Mutex
	at time.Time
	o  *queue.Overview
}

type overviewData struct {
	Overview  *queue.Overview `json:"overview"`
	OldestAge time.Duration   `json:"oldest_pending_age_ns"`
	// Queued, Running, Retrying (waiting too) and Dead are the queue's
	// jobs now.
	Queued   int64 `json:"queued"`
	Running  int64 `json:"running"`
	Retrying int64 `json:"retrying"`
	Dead     int64 `json:"dead"`
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	c.overview.mu.Lock()
	now := c.now()
	if c.overview.o == nil || now.Sub(c.overview.at) >= overviewCacheFor || now.Before(c.overview.at) {
		o, err := c.opts.Queue.Overview(ctx)
		if err != nil {
			c.overview.mu.Unlock()
			c.dbProblem(w, r, err)
			return
		}
		c.overview.o, c.overview.at = o, now
	}
	o := c.overview.o
	c.overview.mu.Unlock()
	jobs := o.Depth.Jobs
	d := overviewData{Overview: o, Queued: jobs[queue.StateQueued], Running: jobs[queue.StateRunning],
		Retrying: jobs[queue.StateRetrying] + jobs[queue.StateWaiting], Dead: jobs[queue.StateDead]}
	if !o.Depth.OldestPending.IsZero() {
		d.OldestAge = max(now.Sub(o.Depth.OldestPending), 0)
	}
	c.render(w, r, http.StatusOK, "overview", "Overview", d)
}

// dbProblem answers a failed read or action of the database.
func (c *Console) dbProblem(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Warn("console: database read failed", "path", r.URL.Path, "error", err.Error())
	c.problem(w, r, http.StatusServiceUnavailable, "The database did not answer; try again in a moment.")
}

// eventsFilter is the events page's filter as its form shows it.
type eventsFilter struct {
	Webhook, Type, Account, State, Since, Until, Q string
}

type eventsData struct {
	Filter   eventsFilter         `json:"filter"`
	Events   []queue.EventSummary `json:"events"`
	Next     string               `json:"next,omitempty"`
	Webhooks []string             `json:"-"`
	Types    []string             `json:"-"`
	States   []queue.SinkState    `json:"-"`
}

// errBadFilter means a filter of the URL could not be read.
var errBadFilter = errors.New("bad filter")

// parseTime reads a time filter: a duration back from now ("90m", "24h",
// "7d"), a date (2006-01-02) or an RFC 3339 time.
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 3660 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errBadFilter
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	f := eventsFilter{Webhook: qv.Get("webhook"), Type: qv.Get("type"), Account: qv.Get("account"), State: qv.Get("state"),
		Since: qv.Get("since"), Until: qv.Get("until"), Q: strings.TrimSpace(qv.Get("q"))}
	data := eventsData{Filter: f, Webhooks: c.webhookNames(), Types: event.KnownTypes(), States: queue.SinkStates()}
	ef := queue.EventFilter{Webhook: f.Webhook, Type: f.Type, Account: f.Account, EventID: f.Q, Cursor: qv.Get("cursor")}
	var err error
	bad := func() {
		c.problem(w, r, http.StatusBadRequest, "A filter could not be read: since and until take 90m, 24h, 7d, 2006-01-02 or an RFC 3339 time; state one of the listed states.")
	}
	for _, v := range []string{f.Webhook, f.Type, f.Account, f.Q, ef.Cursor} {
		if len(v) > maxFilter {
			bad()
			return
		}
	}
	now := c.now()
	if ef.Since, err = parseTime(f.Since, now); err != nil {
		bad()
		return
	}
	if ef.Until, err = parseTime(f.Until, now); err != nil {
		bad()
		return
	}
	if ef.State, err = queue.ParseSinkState(f.State); err != nil {
		bad()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	list, err := c.opts.Queue.Events(ctx, ef, 50)
	if errors.Is(err, queue.ErrBadCursor) {
		bad()
		return
	}
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	data.Events = list.Events
	if list.Next != "" {
		next := url.Values{}
		for k, v := range map[string]string{"webhook": f.Webhook, "type": f.Type, "account": f.Account, "state": f.State,
			"since": f.Since, "until": f.Until, "q": f.Q, "cursor": list.Next} {
			if v != "" {
				next.Set(k, v)
			}
		}
		data.Next = "/events?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "events", "Events", data)
}

func (c *Console) webhookNames() []string {
	names := make([]string, 0, len(c.opts.Webhooks))
	for _, w := range c.opts.Webhooks {
		names = append(names, w.Name)
	}
	return names
}

// eventView is an event's detail as the page shows it: every text that is
// not the sender's own (errors) redacted, the body pretty-printed and
// redacted, and the facts of the event decoded.
type eventView struct {
	queue.EventSummary
	// SignedBeforeReceipt is ReceivedAt less SignedAt (negative when the
	// sender's clock is ahead); absent with SignedAt.
	SignedBeforeReceipt *time.Duration `json:"signed_before_receipt_ns,omitempty"`
	Facts               *facts         `json:"facts,omitempty"`
	Body                string         `json:"body"`
	BodyClipped         bool           `json:"body_clipped,omitempty"`
	Jobs                []jobView      `json:"jobs"`
}

// facts are what the event says of itself.
type facts struct {
	CreatedAt    time.Time `json:"created_at,omitzero"`
	Account      string    `json:"account"`
	Domain       string    `json:"domain,omitempty"`
	AccountURL   string    `json:"account_url,omitempty"`
	Title        string    `json:"title,omitempty"`
	Summary      string    `json:"summary,omitempty"`
	Severity     string    `json:"severity,omitempty"`
	Category     string    `json:"category,omitempty"`
	Notification string    `json:"notification,omitempty"`
	People       []person  `json:"people,omitempty"`
}

type person struct {
	Name   string `json:"name"`
	Email  string `json:"email,omitempty"`
	Title  string `json:"title,omitempty"`
	Role   string `json:"role,omitempty"`
	Change string `json:"change,omitempty"`
}

type jobView struct {
	ID        int64           `json:"job"`
	Sink      string          `json:"sink"`
	State     queue.SinkState `json:"state"`
	Attempts  int             `json:"attempts"`
	Queued    time.Time       `json:"queued"`
	Next      *time.Time      `json:"next,omitempty"`
	Finished  *time.Time      `json:"finished,omitempty"`
	Tries     []tryView       `json:"tries"`
	Receipt   []receiptItem   `json:"receipt,omitempty"`
	ReplayOf  int64           `json:"replay_of,omitempty"`
	CanRetry  bool            `json:"can_retry"`
	CanReplay bool            `json:"can_replay"`
}

type tryView struct {
	Number int           `json:"number"`
	Began  time.Time     `json:"began"`
	Took   time.Duration `json:"took_ns"`
	Error  string        `json:"error,omitempty"`
}

// receiptItem is one thing a sink noted of its delivery; Link is set only
// for an https address.
type receiptItem struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Link  string `json:"link,omitempty"`
}

// receiptOrder puts the receipts a reader looks for first.
var receiptOrder = []string{"jira_issue", "jira_url", "message_id"}

func viewJob(j queue.JobDetail) jobView {
	v := jobView{ID: j.ID, Sink: j.Sink, State: j.State, Attempts: j.Attempts, Queued: j.Queued, Next: j.Next,
		Finished: j.Finished, ReplayOf: j.ReplayOf,
		CanRetry:  j.State == queue.StateRetrying || j.State == queue.StateWaiting,
		CanReplay: j.State == queue.StateDead}
	for _, t := range j.Tries {
		v.Tries = append(v.Tries, tryView{Number: t.Number, Began: t.Began, Took: t.Took, Error: redact(t.Error, maxShownError)})
	}
	keys := make([]string, 0, len(j.Receipt))
	for k := range j.Receipt {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(receiptOrder, a), slices.Index(receiptOrder, b)
		if ia < 0 {
			ia = len(receiptOrder)
		}
		if ib < 0 {
			ib = len(receiptOrder)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		item := receiptItem{Key: k, Value: redact(j.Receipt[k], 512)}
		if strings.HasSuffix(k, "_url") {
			item.Link = httpsURL(item.Value)
		}
		if k == "jira_issue" {
			item.Link = httpsURL(j.Receipt["jira_url"])
		}
		v.Receipt = append(v.Receipt, item)
	}
	return v
}

func factsOf(body []byte) *facts {
	ev, err := event.Decode(body)
	if err != nil {
		return nil
	}
	// The sender's own words, shown as text; redacted all the same, in
	// case a secret was pasted into one.
	r := func(s string) string { return redact(s, maxShownBody) }
	f := &facts{CreatedAt: ev.CreatedAt, Account: r(ev.Account.Name), Domain: r(ev.Account.Domain),
		AccountURL: r(ev.Account.StaircaseURL), Title: r(ev.Signal.Title), Summary: r(ev.Signal.Summary),
		Severity: r(ev.Signal.Severity), Category: r(ev.Signal.Category), Notification: r(ev.Notification.Name)}
	for _, p := range ev.People {
		f.People = append(f.People, person{Name: r(p.Name), Email: r(p.Email), Title: r(p.Title), Role: r(p.Role), Change: r(p.Change)})
	}
	return f
}

func (c *Console) eventPage(w http.ResponseWriter, r *http.Request) {
	webhook, id := r.URL.Query().Get("webhook"), r.URL.Query().Get("id")
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if webhook == "" && id != "" {
		// A search by id alone: the event's page when one webhook has it.
		hooks, err := c.opts.Queue.FindEvent(ctx, id)
		if err != nil {
			c.dbProblem(w, r, err)
			return
		}
		if len(hooks) == 1 {
			webhook = hooks[0]
		}
	}
	d, err := c.opts.Queue.Event(ctx, webhook, id)
	if errors.Is(err, queue.ErrNoEvent) {
		c.problem(w, r, http.StatusNotFound, "No event of that webhook and id is in the database (search by id on the events page).")
		return
	}
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	v := eventView{EventSummary: d.EventSummary, Facts: factsOf(d.Body)}
	if d.SignedAt != nil {
		gap := d.ReceivedAt.Sub(*d.SignedAt)
		v.SignedBeforeReceipt = &gap
	}
	v.Body, v.BodyClipped = prettyJSON(d.Body)
	for _, j := range d.Jobs {
		v.Jobs = append(v.Jobs, viewJob(j))
	}
	c.render(w, r, http.StatusOK, "event", "Event "+clip(id, 64), v)
}

type refusedData struct {
	Webhook  string          `json:"webhook,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Refused  []queue.Refusal `json:"refused"`
	Next     string          `json:"next,omitempty"`
	Webhooks []string        `json:"-"`
	Reasons  []string        `json:"-"`
}

func (c *Console) refusedPage(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	f := queue.RefusedFilter{Webhook: clip(qv.Get("webhook"), maxFilter), Reason: clip(qv.Get("reason"), maxFilter)}
	var ok bool
	if f.Before, ok = before(qv); !ok {
		c.problem(w, r, http.StatusBadRequest, "before must be a refusal's number.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	list, err := c.opts.Queue.Refused(ctx, f, 100)
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	for i := range list {
		list[i].Hint = redact(list[i].Hint, maxShownError)
	}
	d := refusedData{Webhook: f.Webhook, Reason: f.Reason, Refused: list, Webhooks: c.webhookNames(), Reasons: RefusalReasons}
	if len(list) == 100 {
		d.Next = nextPage("/refused", list[len(list)-1].ID, "webhook", f.Webhook, "reason", f.Reason)
	}
	c.render(w, r, http.StatusOK, "refused", "Refused requests", d)
}

// before reads the page cursor of the refused and dead-letter lists: the
// number of the last row shown, or 0 for the first page; ok is false for
// anything but a positive number.
func before(qv url.Values) (n int64, ok bool) {
	b := qv.Get("before")
	if b == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(b, 10, 64)
	return n, err == nil && n > 0
}

// nextPage is the link to the page of path after the row numbered last,
// keeping the filters given as name, value pairs (empty ones left out).
func nextPage(path string, last int64, filters ...string) string {
	next := url.Values{"before": {strconv.FormatInt(last, 10)}}
	for i := 0; i+1 < len(filters); i += 2 {
		if filters[i+1] != "" {
			next.Set(filters[i], filters[i+1])
		}
	}
	return path + "?" + next.Encode()
}

type deadRow struct {
	Job      int64     `json:"job"`
	Time     time.Time `json:"time"`
	Webhook  string    `json:"webhook"`
	EventID  string    `json:"event_id"`
	Sink     string    `json:"sink"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
}

type deadData struct {
	Webhook  string    `json:"webhook,omitempty"`
	Sink     string    `json:"sink,omitempty"`
	Dead     []deadRow `json:"dead"`
	Next     string    `json:"next,omitempty"`
	Webhooks []string  `json:"-"`
	Sinks    []string  `json:"-"`
}

func (c *Console) deadPage(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	f := queue.DeadFilter{Webhook: clip(qv.Get("webhook"), maxFilter), Sink: clip(qv.Get("sink"), maxFilter)}
	var ok bool
	if f.Before, ok = before(qv); !ok {
		c.problem(w, r, http.StatusBadRequest, "before must be a job number.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	list, err := c.opts.Queue.Dead(ctx, f, 100)
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	d := deadData{Webhook: f.Webhook, Sink: f.Sink, Webhooks: c.webhookNames(), Sinks: c.sinks}
	for _, dl := range list {
		d.Dead = append(d.Dead, deadRow{Job: dl.ID, Time: dl.Time, Webhook: dl.Webhook, EventID: dl.EventID, Sink: dl.Sink,
			Attempts: dl.Attempts, Error: redact(dl.Error, maxShownError)})
	}
	if len(list) == 100 {
		d.Next = nextPage("/dead", list[len(list)-1].ID, "webhook", f.Webhook, "sink", f.Sink)
	}
	c.render(w, r, http.StatusOK, "dead", "Dead letters", d)
}

type keyRow struct {
	Label      string     `json:"label"`
	Signing    bool       `json:"signing"`
	Configured bool       `json:"configured"`
	Last       *time.Time `json:"last,omitempty"`
	Recent     int64      `json:"last_24h"`
}

type keysData struct {
	Webhooks []webhookKeys `json:"webhooks"`
}

type webhookKeys struct {
	Webhook string   `json:"webhook"`
	Keys    []keyRow `json:"keys"`
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	uses, err := c.opts.Queue.KeyUses(ctx)
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	byHook := map[string]map[string]queue.KeyUse{}
	var order []string
	for _, u := range uses {
		if byHook[u.Webhook] == nil {
			byHook[u.Webhook] = map[string]queue.KeyUse{}
			order = append(order, u.Webhook)
		}
		byHook[u.Webhook][u.Label] = u
	}
	row := func(label string, u queue.KeyUse, ok bool) keyRow {
		k := keyRow{Label: label}
		if ok {
			last := u.Last
			k.Last, k.Recent = &last, u.Recent
		}
		return k
	}
	var d keysData
	done := map[string]bool{}
	for _, wh := range c.opts.Webhooks {
		wk := webhookKeys{Webhook: wh.Name}
		for i, label := range wh.Keys {
			u, ok := byHook[wh.Name][label]
			k := row(label, u, ok)
			k.Signing, k.Configured = i == 0, true
			wk.Keys = append(wk.Keys, k)
		}
		// Keys the database saw that the configuration no longer has.
		for _, u := range uses {
			if u.Webhook == wh.Name && !slices.Contains(wh.Keys, u.Label) {
				wk.Keys = append(wk.Keys, row(u.Label, u, true))
			}
		}
		d.Webhooks = append(d.Webhooks, wk)
		done[wh.Name] = true
	}
	for _, name := range order {
		if done[name] {
			continue
		}
		wk := webhookKeys{Webhook: name}
		for _, u := range uses {
			if u.Webhook == name {
				wk.Keys = append(wk.Keys, row(u.Label, u, true))
			}
		}
		d.Webhooks = append(d.Webhooks, wk)
	}
	c.render(w, r, http.StatusOK, "keys", "Keys", d)
}
