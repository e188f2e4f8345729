package sources

import (
	"context"

	"github.com/banjia-mail/banjia/mail"
)

// Prefetcher is a Source that can ask for the next bodies before the
// current work is finished: a lane requests its next batch while the
// target is still answering for the last one, so over a real network the
// request's round trip is hidden.
type Prefetcher interface {
	Source
	// Prefetch sends the request for msgs' bodies and returns at once; the
	// next Fetch of the same folder and messages reads them. Any other use
	// of the session first discards the prefetched bodies.
	Prefetch(ctx context.Context, folder mail.Folder, msgs []mail.Message)
}
