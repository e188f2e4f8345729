package migrate

import (
	"errors"
	"os"
	"os/user"
	"strconv"

	"github.com/banjia-mail/banjia/state"
)

// CommandLine is who asks, in the event log, when a banjia command run in
// a shell acts: the operating system's user and host of this process.
var CommandLine = commandLine()

func commandLine() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return state.CLIActor(name, host)
}

// audit answers one page of the event log for a command while this
// process holds the state file (banjia logs with filters).
func (m *Manager) audit(req ControlRequest) ControlReply {
	if req.Query == nil {
		return replyOf(errors.New("audit: no query"))
	}
	page, err := m.store.QueryEvents(*req.Query)
	rep := replyOf(err)
	rep.Page = page
	return rep
}
