package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
)

// sendTimeout bounds a test notification, the receiver's answer included.
const sendTimeout = 20 * time.Second

// maxAccountName bounds the account name of a test notification.
const maxAccountName = 200

// back is where an action returns to: the form's back field when it is a
// path of the console, else fallback; with done, the notice to show.
func back(r *http.Request, fallback, done string) string {
	to := fallback
	if b := r.PostFormValue("back"); b != "" {
		to = safeNext(b)
	}
	u, err := url.Parse(to)
	if err != nil {
		return fallback
	}
	q := u.Query()
	q.Set("done", done)
	u.RawQuery = q.Encode()
	return u.String()
}

func jobNumber(r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PostFormValue("job"), 10, 64)
	return n, err == nil && n > 0
}

// retryJob runs a waiting job now.
func (c *Console) retryJob(w http.ResponseWriter, r *http.Request) {
	c.jobAction(w, r, c.opts.Queue.RetryNow, queue.ErrNotWaiting,
		"That job is not waiting for a retry any more: reload the page.",
		"console: job retried now", "/events", "retried")
}

// replayJob queues a dead letter again.
func (c *Console) replayJob(w http.ResponseWriter, r *http.Request) {
	c.jobAction(w, r, c.opts.Queue.Replay, queue.ErrNotDead,
		"That job is not a dead letter any more: reload the page.",
		"console: dead letter replayed", "/dead", "replayed")
}

// jobAction runs act on the job the form names: 400 without a job number,
// 409 with gone when the job is no longer in the state act needs, then a
// log line and back to the page (fallback when none) with done.
func (c *Console) jobAction(w http.ResponseWriter, r *http.Request, act func(context.Context, int64) error, gone error, goneText, logMsg, fallback, done string) {
	id, ok := jobNumber(r)
	if !ok {
		c.problem(w, r, http.StatusBadRequest, "job must be a job number.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	err := act(ctx, id)
	if errors.Is(err, gone) {
		c.problem(w, r, http.StatusConflict, goneText)
		return
	}
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	c.log.Info(logMsg, "job", id, "remote", remoteHost(r))
	http.Redirect(w, r, back(r, fallback, done), http.StatusSeeOther)
}

// replayAll queues again every dead letter matching the form's webhook and
// sink.
func (c *Console) replayAll(w http.ResponseWriter, r *http.Request) {
	f := queue.DeadFilter{Webhook: clip(r.PostFormValue("webhook"), maxFilter), Sink: clip(r.PostFormValue("sink"), maxFilter)}
	ctx, cancel := context.WithTimeout(r.Context(), 5*queryTimeout)
	defer cancel()
	n, err := c.opts.Queue.ReplayDead(ctx, f)
	c.log.Info("console: dead letters replayed", "count", n, "webhook", f.Webhook, "sink", f.Sink, "remote", remoteHost(r))
	if err != nil {
		c.dbProblem(w, r, err)
		return
	}
	to := url.Values{"done": {"replayed_all"}}
	if f.Webhook != "" {
		to.Set("webhook", f.Webhook)
	}
	if f.Sink != "" {
		to.Set("sink", f.Sink)
	}
	http.Redirect(w, r, "/dead?"+to.Encode(), http.StatusSeeOther)
}

type testData struct {
	Available bool        `json:"available"`
	Webhooks  []string    `json:"webhooks"`
	Types     []string    `json:"types"`
	Webhook   string      `json:"webhook,omitempty"`
	Type      string      `json:"type,omitempty"`
	Account   string      `json:"account,omitempty"`
	Result    *testResult `json:"result,omitempty"`
}

type testResult struct {
	Webhook  string `json:"webhook"`
	EventID  string `json:"event_id"`
	Status   int    `json:"status"`
	Response string `json:"response"`
	Accepted bool   `json:"accepted"`
	Error    string `json:"error,omitempty"`
}

func (c *Console) testData() testData {
	return testData{Available: c.opts.Send != nil, Webhooks: c.webhookNames(), Types: event.SampleTypes(),
		Type: event.TypeChurnRisk, Account: "Acme Corp"}
}

func (c *Console) testPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "test", "Test notification", c.testData())
}

// sendTest signs a sample of the chosen type, about the chosen account,
// with the webhook's current key, and sends it to the public listener
// through Options.Send: the whole chain, as the sender's own test
// notification would.
func (c *Console) sendTest(w http.ResponseWriter, r *http.Request) {
	d := c.testData()
	d.Webhook, d.Type, d.Account = r.PostFormValue("webhook"), r.PostFormValue("type"), r.PostFormValue("account")
	if c.opts.Send == nil {
		c.problem(w, r, http.StatusNotFound, "Test notifications are not available on this console.")
		return
	}
	if _, ok := c.webhooks[d.Webhook]; !ok || !slices.Contains(d.Types, d.Type) || len(d.Account) > maxAccountName {
		c.problem(w, r, http.StatusBadRequest, "Choose a configured webhook and a listed type; the account name is at most 200 characters.")
		return
	}
	id, body, err := testEvent(d.Type, d.Account, c.now())
	if err != nil {
		c.problem(w, r, http.StatusBadRequest, "That account name cannot go into an event.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
	defer cancel()
	res := &testResult{Webhook: d.Webhook, EventID: id}
	status, resp, err := c.opts.Send(ctx, d.Webhook, id, body)
	if err != nil {
		res.Error = redact(err.Error(), maxShownError)
	} else {
		res.Status, res.Response = status, redact(string(resp), maxShownResponse)
		res.Accepted = status == http.StatusAccepted || status == http.StatusOK
	}
	c.log.Info("console: test notification sent", "webhook", d.Webhook, "id", id, "status", status, "remote", remoteHost(r))
	d.Result = res
	c.render(w, r, http.StatusOK, "test", "Test notification", d)
}

// testEvent is the sample of typ about account (when not empty), marked
// as a test, with a fresh id and the current time.
func testEvent(typ, account string, now time.Time) (string, []byte, error) {
	sample, err := event.Sample(typ)
	if err != nil {
		return "", nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(sample, &ev); err != nil {
		return "", nil, err
	}
	rnd := make([]byte, 8)
	rand.Read(rnd)
	id := "evt_test_" + hex.EncodeToString(rnd)
	ev["id"], ev["test"], ev["created_at"] = id, true, now.UTC().Format(time.RFC3339)
	if acc, ok := ev["account"].(map[string]any); ok && account != "" {
		acc["name"] = account
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return "", nil, err
	}
	if _, err := event.Decode(body); err != nil {
		return "", nil, err
	}
	return id, body, nil
}
