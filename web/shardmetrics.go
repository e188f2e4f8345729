package web

import (
	"net/http"
	"strconv"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// shardLabel is the shard a state file holds ("" for a whole job's): the
// index of the first sharded job in it (an exported shard file holds one
// job).
func shardLabel(store *state.Store) string {
	jobs, err := store.Jobs()
	if err != nil {
		return ""
	}
	for _, j := range jobs {
		if j.Shard != nil {
			return strconv.Itoa(j.Shard.Index)
		}
	}
	return ""
}

// MetricsHandler serves /metrics and /healthz for a process that runs a
// job without the portal (banjia job start --metrics-listen: a shard's pod,
// scraped by Prometheus), with the same series as banjia serve's, labelled
// with the state file's shard when it holds one. event counts the
// engine's events (migrate.Config.OnEvent). shard is the one the process
// runs (nil: the one its state file holds, if any).
func MetricsHandler(mgr *migrate.Manager, shard *state.Shard) (h http.Handler, event func(*state.Event)) {
	label := shardLabel(mgr.Store())
	if shard != nil {
		label = strconv.Itoa(shard.Index)
	}
	m := newMetricsOf(mgr, label)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux, m.event
}
