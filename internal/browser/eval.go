package browser

import (
	"context"
	"time"

	"github.com/chromedp/chromedp"
)

// Eval evaluates a JavaScript expression in the tab's page and decodes its
// value (JSON) as T, for what the page shows but no text says: a progress
// bar's value, an element's rendered width. An error fails the test.
func Eval[T any](p *Tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
