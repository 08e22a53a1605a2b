package tlsresume

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
)

// TestHTTPAcrossCuts: net/http's server streams a large response over the
// listener and net/http's client reads it over Dial while the links are
// reset and blackholed several times; neither side's HTTP code knows.
func TestHTTPAcrossCuts(t *testing.T) {
	const size = 16 << 20
	s := newSimNet(t, nil, netsim.WithLatency(2*time.Millisecond), netsim.WithBandwidth(16<<20))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		writeStream(w, 3, size)
	})}
	go srv.Serve(s.ln)
	defer srv.Close()
	cfg := s.clientCfg()
	tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return Dial(ctx, network, addr, clientTLS(t), cfg)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	resp, err := client.Get("https://" + s.addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	cut := &cutter{n: s.n, marks: []int{size / 5, 2 * size / 5, 3 * size / 5, 4 * size / 5}}
	if err := readStream(resp.Body, 3, size, true, cut.progress); err != nil {
		t.Fatal(err)
	}
	if cut.cuts != len(cut.marks) {
		t.Fatalf("%d cuts", cut.cuts)
	}
	// The same connection serves the next request.
	resp2, err := client.Get("https://" + s.addr + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if st := s.ln.Registry().Stats(); st.Sessions != 1 {
		t.Fatalf("%d sessions on the server, want 1 (the connection reused)", st.Sessions)
	}
}
