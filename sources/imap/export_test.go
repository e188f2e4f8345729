package imap

// SkipID turns the IMAP ID step off until the returned function is called,
// to show what a server that demands it does without it.
func SkipID() (restore func()) {
	skipID.Store(true)
	return func() { skipID.Store(false) }
}
