package verify_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// BenchmarkMiddleware compares a handler that reads a 1 KiB body, bare and
// behind the Middleware with a MemoryStore, each request with a fresh id:
//
//   - via=handler calls ServeHTTP directly: the Middleware's own cost
//     (read, HMAC, store, context) against almost nothing;
//   - via=server sends real requests to an httptest.Server over loopback,
//     which is what a receiver pays per webhook.
//
// Signing is done in batches with the timer stopped. Compare with
//
//	go test -run='^$' -bench=Middleware -benchmem -count=6 ./verify > bench.txt
//	benchstat -col /impl bench.txt
func BenchmarkMiddleware(b *testing.B) {
	body := make([]byte, 1024)
	rand.Read(body)
	secret, err := verify.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			b.Error(err)
		}
	})
	for _, via := range []string{"handler", "server"} {
		for _, impl := range []string{"bare", "middleware"} {
			b.Run("via="+via+"/impl="+impl, func(b *testing.B) {
				h := http.Handler(read)
				if impl == "middleware" {
					v, err := verify.NewVerifier(verify.Options{
						Keys:  []verify.Key{{Secret: secret}},
						Now:   func() time.Time { return mwNow },
						Store: verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: b.N + 1, Now: func() time.Time { return mwNow }}),
					})
					if err != nil {
						b.Fatal(err)
					}
					h = v.Middleware(read)
				}
				if via == "handler" {
					benchHandler(b, h, secret, body)
				} else {
					benchServer(b, h, secret, body)
				}
			})
		}
	}
}

const benchBatch = 1024

// signBatch signs the ids start… of the next batch; the caller stops the
// timer around it.
func signBatch(headers []http.Header, secret verify.Secret, start int, body []byte) {
	for i := range headers {
		headers[i] = verifytest.SignedHeaders(secret, "evt_"+strconv.Itoa(start+i), mwNow, body)
	}
}

func benchHandler(b *testing.B, h http.Handler, secret verify.Secret, body []byte) {
	tmpl := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
	tmpl.ContentLength = int64(len(body))
	headers := make([]http.Header, benchBatch)
	reqs := make([]http.Request, benchBatch)
	readers := make([]bytes.Reader, benchBatch)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchBatch
		if j == 0 {
			b.StopTimer()
			signBatch(headers, secret, i, body)
			for k := range reqs {
				reqs[k] = *tmpl
				reqs[k].Header = headers[k]
				readers[k].Reset(body)
				reqs[k].Body = io.NopCloser(&readers[k])
			}
			b.StartTimer()
		}
		w.code = 0
		h.ServeHTTP(w, &reqs[j])
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

func benchServer(b *testing.B, h http.Handler, secret verify.Secret, body []byte) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	url := srv.URL + "/webhooks/staircase"
	headers := make([]http.Header, benchBatch)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchBatch
		if j == 0 {
			b.StopTimer()
			signBatch(headers, secret, i, body)
			b.StartTimer()
		}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header = headers[j]
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// discardWriter is the least a ResponseWriter can be, so that via=handler
// measures the handlers, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkMiddlewareBody measures the Middleware alone (via=handler) on
// bodies of 1 KiB and of 1 MiB, the default cap, sent with a
// Content-Length: B/op and allocs/op show what reading the body costs.
func BenchmarkMiddlewareBody(b *testing.B) {
	secret, err := verify.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			b.Error(err)
		}
	})
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}} {
		b.Run("size="+size.name, func(b *testing.B) {
			body := make([]byte, size.n)
			rand.Read(body)
			v, err := verify.NewVerifier(verify.Options{
				Keys:  []verify.Key{{Secret: secret}},
				Now:   func() time.Time { return mwNow },
				Store: verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: b.N + 1, Now: func() time.Time { return mwNow }}),
			})
			if err != nil {
				b.Fatal(err)
			}
			benchHandler(b, v.Middleware(read), secret, body)
		})
	}
}
