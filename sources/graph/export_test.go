package graph

// ForgetDeltaRefusals forgets every Graph that refused message delta: a
// test's emulator closes, and its port may serve the next test's.
func ForgetDeltaRefusals() { deltaRefusals.Clear() }
