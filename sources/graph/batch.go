package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
)

// JSON batching ($batch) sends up to maxBatch GETs in one HTTP request.
// It saves round trips and HTTP requests, not throttling budget: Graph
// counts each request of a batch against the mailbox's limits (its budget
// of requests per 10 minutes, its 4 at once) as if sent alone. Graph hands
// the Outlook service at most 4 of a batch's unordered requests at a time,
// which keeps within the 4 at once only while nothing else of the app is in
// flight to the mailbox: a batch holds every one of the mailbox's slots.
// The source batches only small metadata reads (the folder tree and the
// well-known folders); message bodies go one $value each, streamed.

const maxBatch = 20

// batchAnswer is one request's answer inside a $batch.
type batchAnswer struct {
	Status int
	Header http.Header
	Body   json.RawMessage
}

func (a *batchAnswer) ok() bool { return a.Status/100 == 2 }

// apiError reads a failed answer as Graph's error.
func (a *batchAnswer) apiError() *apiError {
	e := &apiError{Status: a.Status}
	if throttled(a.Status) {
		e.RetryAfter = retryAfter(a.Header, 1)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(a.Body, &body) == nil {
		e.Code, e.Text = body.Error.Code, body.Error.Message
	}
	return e
}

// parse reads a JSON answer into one of the SDK's models.
func parse[T any](a *batchAnswer, factory absser.ParsableFactory) (T, error) {
	var zero T
	node, err := jsonserialization.NewJsonParseNode(a.Body)
	if err != nil {
		return zero, err
	}
	v, err := node.GetObjectValue(factory)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("unexpected %T in a batch answer", v)
	}
	return t, nil
}

type wholeMailboxKey struct{}

// batch GETs paths (relative to the version root, "/users/..."), at most
// maxBatch to a $batch. A request answered 429 or 503 inside a batch is
// sent again, in the next batch, after the wait it was told; answers come
// back in the order of paths, failures included.
func (c *client) batch(ctx context.Context, paths []string) ([]batchAnswer, error) {
	out := make([]batchAnswer, len(paths))
	pending := make([]int, len(paths))
	for i := range paths {
		pending[i] = i
	}
	attempt := 1
	for len(pending) > 0 {
		n := min(len(pending), maxBatch)
		chunk := pending[:n]
		answers, err := c.sendBatch(ctx, paths, chunk)
		if err != nil {
			return nil, err
		}
		var again []int
		var wait time.Duration
		for k, i := range chunk {
			out[i] = answers[k]
			if throttled(answers[k].Status) && attempt < MaxAttempts {
				if w := retryAfter(answers[k].Header, attempt); w <= MaxRetryWait {
					again = append(again, i)
					wait = max(wait, w)
				}
			}
		}
		if len(again) > 0 {
			attempt++
			c.lim.pause(wait)
		}
		pending = append(again, pending[n:]...)
	}
	return out, nil
}

// sendBatch sends one $batch of paths[chunk...].
func (c *client) sendBatch(ctx context.Context, paths []string, chunk []int) ([]batchAnswer, error) {
	type item struct {
		ID      string            `json:"id"`
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	var body struct {
		Requests []item `json:"requests"`
	}
	for k, i := range chunk {
		// Headers are each request's own: the batch's are not passed on.
		body.Requests = append(body.Requests, item{ID: fmt.Sprint(k), Method: http.MethodGet, URL: paths[i],
			Headers: map[string]string{"Prefer": `IdType="ImmutableId"`}})
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	renewed := false
	for attempt := 1; ; attempt++ {
		tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.cloud.scope}})
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(context.WithValue(ctx, wholeMailboxKey{}, true), http.MethodPost, c.cloud.baseURL()+"/$batch", bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && !renewed {
			resp.Body.Close()
			if _, err := c.freshToken(ctx, tok.Token); err != nil {
				return nil, err
			}
			renewed = true
			continue
		}
		if throttled(resp.StatusCode) && attempt < MaxAttempts {
			if wait := retryAfter(resp.Header, attempt); wait <= MaxRetryWait {
				resp.Body.Close()
				c.lim.pause(wait)
				continue
			}
		}
		if resp.StatusCode/100 != 2 {
			return nil, responseError(resp)
		}
		var got struct {
			Responses []struct {
				ID      string            `json:"id"`
				Status  int               `json:"status"`
				Headers map[string]string `json:"headers"`
				Body    json.RawMessage   `json:"body"`
			} `json:"responses"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&got)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading a $batch answer: %w", err)
		}
		out := make([]batchAnswer, len(chunk))
		seen := make([]bool, len(chunk))
		for _, r := range got.Responses {
			var k int
			if _, err := fmt.Sscan(r.ID, &k); err != nil || k < 0 || k >= len(chunk) || seen[k] {
				return nil, fmt.Errorf("a $batch answer with an unknown id %q", r.ID)
			}
			seen[k] = true
			h := http.Header{}
			for name, v := range r.Headers {
				h.Set(name, v)
			}
			out[k] = batchAnswer{Status: r.Status, Header: h, Body: r.Body}
			if ct := h.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
				// Anything but JSON comes base64-encoded.
				var raw []byte
				if json.Unmarshal(r.Body, &raw) == nil {
					out[k].Body = raw
				}
			}
		}
		for k, ok := range seen {
			if !ok {
				return nil, fmt.Errorf("a $batch answer without request %d", k)
			}
		}
		return out, nil
	}
}
