package delayproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves one connection per accept, writing back what it reads.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestRoundTripAndOrder(t *testing.T) {
	p, err := Start(echo(t), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// Round trips: each costs about 20 ms.
	start := time.Now()
	for i := 0; i < 5; i++ {
		c.Write([]byte("ping\n"))
		if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("echo: %q %v", line, err)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 400*time.Millisecond {
		t.Fatalf("5 round trips took %v, want about 100ms", d)
	}
	// Throughput: 64 MB streamed both ways is not slowed to one chunk per delay.
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	start = time.Now()
	go c.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("stream reordered or corrupted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("64 MB took %v through the proxy", d)
	}
}
