package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "the event log (搬家查询): filter by job, account, time, kind, result and who acted; export as CSV or JSON; -f follows a running job",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "job", Usage: "only this job"},
			&cli.StringFlag{Name: "account", Usage: "only this account (old address)"},
			&cli.StringFlag{Name: "since", Usage: "from this time: 2026-01-31, \"2026-01-31 08:00\", RFC 3339, or back from now (24h, 7d)"},
			&cli.StringFlag{Name: "until", Usage: "before this time (a date: to the end of that day)"},
			&cli.StringFlag{Name: "kind", Usage: "event kinds, comma-separated: account.failed, or every kind under a prefix (account, admin)"},
			&cli.StringFlag{Name: "result", Usage: "results, comma-separated: " + strings.Join(state.Results, ", ")},
			&cli.StringFlag{Name: "who", Usage: "who acted, comma-separated: admin, token, cli, member, banjia, a whole value (admin:alice) or part of a name"},
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "only the newest N events (0: all)"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text, csv, json (one array) or jsonl (one event a line)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "then follow the running job's new events"},
			&cli.BoolFlag{Name: "json", Usage: "same as --format jsonl"},
		},
		Action: logs,
	}
}

func logs(c *cli.Context) error {
	format := c.String("format")
	if c.Bool("json") {
		format = "jsonl"
	}
	if !slices.Contains([]string{"text", "csv", "json", "jsonl"}, format) {
		return fmt.Errorf("--format %q: want text, csv, json or jsonl", format)
	}
	if c.Int("limit") < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", c.Int("limit"))
	}
	if c.Bool("follow") && (format == "csv" || format == "json") {
		return fmt.Errorf("--follow writes a line per event: use --format text or jsonl")
	}
	q, err := state.ParseEventQuery(c.String, time.Now(), time.Local)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	lang := langOf(c.String("lang"))
	out := newEventWriter(os.Stdout, format, lang)
	var last uint64
	err = readEvents(c.String("state"), q, c.Int("limit"), func(e *state.Event) error {
		last = max(last, e.Seq)
		return out.write(e)
	})
	if err != nil {
		return err
	}
	if err := out.finish(); err != nil || !c.Bool("follow") {
		return err
	}
	return followEvents(c, q, last, out)
}

// readEvents gives fn the events q picks, oldest first (the newest limit
// of them when limit > 0): from the process that holds the state file, or
// from the file when none does.
func readEvents(statePath string, q state.EventQuery, limit int, fn func(*state.Event) error) error {
	var evs []*state.Event
	q.Oldest = limit == 0
	for {
		q.Limit = state.MaxEventPage
		if limit > 0 {
			q.Limit = min(limit-len(evs), state.MaxEventPage)
		}
		page, err := eventPage(statePath, q)
		if err != nil {
			return err
		}
		if q.Oldest {
			// Written as they come: an export of the whole log is not held.
			for _, e := range page.Events {
				if err := fn(e); err != nil {
					return err
				}
			}
		} else {
			evs = append(evs, page.Events...)
		}
		if page.Next == "" || limit > 0 && len(evs) >= limit {
			break
		}
		q.From = page.Next
	}
	slices.Reverse(evs)
	for _, e := range evs {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func eventPage(statePath string, q state.EventQuery) (*state.EventPage, error) {
	rep, err := migrate.Control(statePath, migrate.ControlRequest{Op: "audit", Query: &q})
	if err == nil {
		return rep.Page, nil
	}
	if !errors.Is(err, migrate.ErrNoRunner) {
		return nil, err
	}
	store, err := state.OpenExisting(statePath)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return store.QueryEvents(q)
}

// followEvents prints the new events that match q as the running job
// records them, until interrupted.
func followEvents(c *cli.Context, q state.EventQuery, last uint64, out *eventWriter) error {
	lang := langOf(c.String("lang"))
	print := func(evs []*state.Event, st *migrate.Status) error {
		for _, e := range evs {
			last = max(last, e.Seq)
			if q.Match(e) {
				if err := out.write(e); err != nil {
					return err
				}
			}
		}
		if st != nil {
			if out.format == "jsonl" {
				return json.NewEncoder(out.w).Encode(map[string]any{"progress": st})
			}
			_, err := fmt.Fprintln(out.w, progressLine(lang, st, 0, 0, 0))
			return err
		}
		return nil
	}
	for {
		err := migrate.Follow(c.Context, c.String("state"), q.Job, last, func(rep *migrate.ControlReply) error {
			return print(rep.Events, rep.Status)
		})
		if err != nil && !errors.Is(err, migrate.ErrNoRunner) {
			if c.Context.Err() != nil {
				return nil
			}
			return err
		}
		if errors.Is(err, migrate.ErrNoRunner) {
			// Nothing running: read the file, briefly, so a job can still start.
			store, err := state.OpenExisting(c.String("state"))
			if err != nil && !errors.Is(err, state.ErrLocked) {
				return err
			}
			if err == nil {
				evs, err := store.Events(q.Job, last, 0)
				store.Close()
				if err != nil {
					return err
				}
				if err := print(evs, nil); err != nil {
					return err
				}
			}
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// eventWriter writes events in one of logs' formats.
type eventWriter struct {
	w      io.Writer
	format string
	lang   string
	csv    *csv.Writer
	n      int
}

func newEventWriter(w io.Writer, format, lang string) *eventWriter {
	return &eventWriter{w: w, format: format, lang: lang}
}

func (o *eventWriter) write(e *state.Event) error {
	defer func() { o.n++ }()
	switch o.format {
	case "csv":
		if o.csv == nil {
			o.csv = csv.NewWriter(o.w)
			o.csv.Write(web.EventCSVHeader)
		}
		return o.csv.Write(web.EventCSVRecord(o.lang, e))
	case "json":
		sep := ",\n"
		if o.n == 0 {
			sep = "[\n"
		}
		b, err := json.Marshal(web.EventJSON(o.lang, e))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.w, "%s%s", sep, b)
		return err
	case "jsonl":
		return json.NewEncoder(o.w).Encode(e)
	}
	_, err := fmt.Fprintln(o.w, auditLine(o.lang, e))
	return err
}

func (o *eventWriter) finish() error {
	switch o.format {
	case "csv":
		if o.csv == nil {
			o.csv = csv.NewWriter(o.w)
			o.csv.Write(web.EventCSVHeader)
		}
		o.csv.Flush()
		return o.csv.Error()
	case "json":
		if o.n == 0 {
			_, err := io.WriteString(o.w, "[]\n")
			return err
		}
		_, err := io.WriteString(o.w, "\n]\n")
		return err
	}
	return nil
}

// auditLine is an event as banjia logs prints it: when, what, who acted,
// and the message.
func auditLine(lang string, e *state.Event) string {
	who := "-"
	if e.Who != "" {
		who = state.Actor(e.Who).Text(lang)
	}
	return fmt.Sprintf("%s  %-18s %-8s %s  %s", e.Time.Local().Format("2006-01-02 15:04:05"), state.KindText(lang, e.Kind), word(lang, "result."+e.Result()), who, e.Text(lang))
}
