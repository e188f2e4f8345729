package migrate

import "testing"

func TestChangesSubscribe(t *testing.T) {
	var c changes
	a, stopA := c.Subscribe()
	b, stopB := c.Subscribe()
	c.notify()
	c.notify() // a second change while the first is unread: one wake-up, no block
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatal("a listener was not woken")
		}
		select {
		case <-ch:
			t.Fatal("two wake-ups pending for one listener")
		default:
		}
	}
	stopA()
	c.notify()
	select {
	case <-a:
		t.Fatal("a listener that left was woken")
	default:
	}
	<-b
	stopB()
	if len(c.subs) != 0 {
		t.Fatalf("%d listeners left behind", len(c.subs))
	}
}
