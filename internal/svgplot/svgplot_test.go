package svgplot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type elem struct {
	name  string
	attrs map[string]string
	text  string // character data directly inside the element
}

// parseSVG decodes the whole document with encoding/xml, failing the test
// if it is not well-formed, and returns all elements in document order.
func parseSVG(t *testing.T, doc []byte) []*elem {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var out, stack []*elem
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &elem{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if len(out) == 0 || out[0].name != "svg" {
		t.Fatalf("root element is not <svg>")
	}
	return out
}

func render(t *testing.T, c *Chart) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatalf("WriteSVG: %v", err)
	}
	return b.Bytes()
}

func find(els []*elem, name, class string) []*elem {
	var out []*elem
	for _, e := range els {
		if e.name == name && (class == "" || e.attrs["class"] == class) {
			out = append(out, e)
		}
	}
	return out
}

func attrF(t *testing.T, e *elem, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attrs[name], 64)
	if err != nil {
		t.Fatalf("<%s> attribute %s=%q: %v", e.name, name, e.attrs[name], err)
	}
	return v
}

func checkFinite(t *testing.T, doc []byte) {
	t.Helper()
	for _, bad := range []string{"NaN", "Inf", "inf"} {
		if bytes.Contains(doc, []byte(bad)) {
			t.Errorf("output contains %q:\n%s", bad, doc)
		}
	}
}

func polylinePoints(t *testing.T, els []*elem) [][2]float64 {
	t.Helper()
	pl := find(els, "polyline", "progress")
	if len(pl) != 1 {
		t.Fatalf("got %d progress polylines, want 1", len(pl))
	}
	var pts [][2]float64
	for _, f := range strings.Fields(pl[0].attrs["points"]) {
		xs, ys, ok := strings.Cut(f, ",")
		if !ok {
			t.Fatalf("bad polyline vertex %q", f)
		}
		x, err1 := strconv.ParseFloat(xs, 64)
		y, err2 := strconv.ParseFloat(ys, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad polyline vertex %q", f)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return pts
}

// tickPositions maps the x tick labels to their x coordinate, so tests can
// check geometry against the axis actually drawn.
func tickPositions(t *testing.T, els []*elem, class, coord string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, e := range find(els, "text", class) {
		m[e.text] = attrF(t, e, coord)
	}
	return m
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.02 }

func TestSmallChart(t *testing.T) {
	c := &Chart{
		Title: `Transfer <a&b> "quoted"`,
		Points: []Point{
			{0, 0},
			{2 * time.Second, 2 * mib},
			{4 * time.Second, 4 * mib},
			{7 * time.Second, 4 * mib},
			{10 * time.Second, 8 * mib},
		},
		Outages: []Outage{
			{Start: 4 * time.Second, End: 7 * time.Second, Label: "cut 1 (blackhole)"},
			{Start: 8500 * time.Millisecond, End: 9 * time.Second, Label: "cut 2 <rst>"},
		},
		Resumes: []time.Duration{7 * time.Second, 9 * time.Second},
	}
	doc := render(t, c)
	checkFinite(t, doc)
	els := parseSVG(t, doc)

	root := els[0]
	if root.attrs["width"] != "800" || root.attrs["height"] != "400" {
		t.Errorf("default size = %sx%s, want 800x400", root.attrs["width"], root.attrs["height"])
	}

	pts := polylinePoints(t, els)
	if len(pts) != len(c.Points) {
		t.Fatalf("polyline has %d points, want %d", len(pts), len(c.Points))
	}

	xt := tickPositions(t, els, "xtick", "x")
	x0, ok0 := xt["0"]
	x10, ok10 := xt["10"]
	if !ok0 || !ok10 {
		t.Fatalf("x tick labels %v lack 0 and 10", xt)
	}
	xOf := func(d time.Duration) float64 { return x0 + d.Seconds()/10*(x10-x0) }
	yt := tickPositions(t, els, "ytick", "y")
	if _, ok := yt["8"]; !ok {
		t.Errorf("y tick labels %v lack 8 (MiB)", yt)
	}
	for _, want := range []string{"0", "2", "4", "6", "8", "10"} {
		if _, ok := xt[want]; !ok {
			t.Errorf("x tick labels %v lack %s", xt, want)
		}
	}

	// Polyline vertices sit at the time scale and go up with the bytes.
	for i, p := range c.Points {
		if !near(pts[i][0], xOf(p.T)) {
			t.Errorf("vertex %d x = %v, want %v", i, pts[i][0], xOf(p.T))
		}
	}
	if !(pts[4][1] < pts[2][1] && pts[2][1] < pts[0][1]) {
		t.Errorf("polyline y does not increase upward with bytes: %v", pts)
	}
	if pts[2][1] != pts[3][1] {
		t.Errorf("flat stretch not flat: %v", pts)
	}

	rects := find(els, "rect", "outage")
	if len(rects) != len(c.Outages) {
		t.Fatalf("got %d outage rects, want %d", len(rects), len(c.Outages))
	}
	for i, o := range c.Outages {
		x, w := attrF(t, rects[i], "x"), attrF(t, rects[i], "width")
		if !near(x, xOf(o.Start)) || !near(w, xOf(o.End)-xOf(o.Start)) {
			t.Errorf("outage %d rect x=%v width=%v, want x=%v width=%v", i, x, w, xOf(o.Start), xOf(o.End)-xOf(o.Start))
		}
		if op := attrF(t, rects[i], "fill-opacity"); !(op > 0 && op < 1) {
			t.Errorf("outage %d not semi-transparent: fill-opacity=%v", i, op)
		}
	}
	labels := find(els, "text", "outage-label")
	if len(labels) != 2 || labels[0].text != "cut 1 (blackhole)" || labels[1].text != "cut 2 <rst>" {
		t.Errorf("outage labels = %+v", labels)
	}
	if got := find(els, "g", "resume"); len(got) != 2 {
		t.Errorf("got %d resume markers, want 2", len(got))
	}
	if got := find(els, "text", "title"); len(got) != 1 || got[0].text != c.Title {
		t.Errorf("title = %+v, want %q", got, c.Title)
	}
	if got := find(els, "g", "legend"); len(got) != 1 {
		t.Errorf("got %d legends, want 1", len(got))
	}
	var legend []string
	inLegend := false
	for _, e := range els {
		if e.name == "g" {
			inLegend = e.attrs["class"] == "legend"
		}
		if inLegend && e.name == "text" {
			legend = append(legend, e.text)
		}
	}
	if strings.Join(legend, "|") != "bytes transferred|connection outage|session resumed" {
		t.Errorf("legend entries = %q", legend)
	}
	titles := find(els, "text", "axis-title")
	if len(titles) != 2 || !strings.Contains(titles[0].text, "(s)") || !strings.Contains(titles[1].text, "MiB") {
		t.Errorf("axis titles = %+v", titles)
	}
	if bytes.Contains(doc, []byte("<a&b>")) || bytes.Contains(doc, []byte("<rst>")) {
		t.Errorf("text not escaped")
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct {
		span   float64
		target int
		want   float64
	}{
		{10, 9, 2}, {10, 5, 2}, {10, 10, 1}, {1, 5, 0.2}, {100, 4, 50},
		{7.3, 8, 1}, {0.003, 5, 0.001}, {2500, 5, 500}, {0, 5, 1}, {math.NaN(), 5, 1},
	} {
		if got := niceStep(tc.span, tc.target); math.Abs(got-tc.want) > 1e-12*tc.want {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tc.span, tc.target, got, tc.want)
		}
	}
	for _, span := range []float64{1e-9, 0.37, 3, 17, 123.4, 9e9} {
		step := niceStep(span, 6)
		m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
		if !near(m, 1) && !near(m, 2) && !near(m, 5) {
			t.Errorf("niceStep(%v) = %v is not 1/2/5x10^n", span, step)
		}
	}
}

func TestDecimation(t *testing.T) {
	const n = 25000
	c := &Chart{}
	for i := range n {
		b := int64(i) * 1000
		if i > 10000 && i < 14000 { // an outage: progress stalls
			b = 10000 * 1000
		}
		if i >= 14000 {
			b = int64(i-4000) * 1000
		}
		c.Points = append(c.Points, Point{T: time.Duration(i) * time.Millisecond, Bytes: b})
	}
	doc := render(t, c)
	checkFinite(t, doc)
	els := parseSVG(t, doc)
	pts := polylinePoints(t, els)
	if len(pts) > MaxPolylinePoints || len(pts) < 100 {
		t.Fatalf("decimated polyline has %d points, want <= %d", len(pts), MaxPolylinePoints)
	}
	l := c.layout()
	first, last := c.Points[0], c.Points[n-1]
	if !near(pts[0][0], l.x(first.T.Seconds())) || !near(pts[len(pts)-1][0], l.x(last.T.Seconds())) ||
		!near(pts[len(pts)-1][1], l.y(float64(last.Bytes)/mib)) {
		t.Errorf("decimation lost the endpoints: %v ... %v", pts[0], pts[len(pts)-1])
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0] < pts[i-1][0] || pts[i][1] > pts[i-1][1] {
			t.Fatalf("decimated line not monotone at %d: %v %v", i, pts[i-1], pts[i])
		}
	}
	if len(doc) > 200<<10 {
		t.Errorf("SVG is %d bytes, want it small", len(doc))
	}
}

func TestEdgeCases(t *testing.T) {
	for name, c := range map[string]*Chart{
		"empty":           {},
		"no points":       {Title: "x", Outages: []Outage{{Start: time.Second, End: 2 * time.Second, Label: "cut"}}},
		"one point":       {Points: []Point{{T: time.Second, Bytes: 5 * mib}}},
		"one point at 0":  {Points: []Point{{}}},
		"zero bytes":      {Points: []Point{{0, 0}, {time.Second, 0}, {2 * time.Second, 0}}},
		"zero duration":   {Points: []Point{{0, 0}, {0, mib}, {0, 3 * mib}}, Resumes: []time.Duration{0}},
		"all zero":        {Points: []Point{{}, {}}, Outages: []Outage{{}}, Resumes: []time.Duration{0}},
		"open outage":     {Points: []Point{{0, 0}, {time.Second, mib}}, Outages: []Outage{{Start: time.Second, Label: "cut (open)"}}},
		"beyond data":     {Points: []Point{{0, 0}, {time.Second, mib}}, Outages: []Outage{{Start: 5 * time.Second, End: 9 * time.Second, Label: "late"}}, Resumes: []time.Duration{12 * time.Second}},
		"reversed outage": {Points: []Point{{0, 0}, {3 * time.Second, mib}}, Outages: []Outage{{Start: 2 * time.Second, End: time.Second}}},
		"negative":        {Points: []Point{{-time.Second, -5}, {time.Second, mib}}, Outages: []Outage{{Start: -time.Second, End: -time.Millisecond}}, Resumes: []time.Duration{-time.Second}},
		"unsorted":        {Points: []Point{{3 * time.Second, 3 * mib}, {time.Second, mib}, {2 * time.Second, 2 * mib}}},
		"tiny size":       {Points: []Point{{0, 0}, {time.Second, mib}}, Width: 1, Height: 1},
		"huge values":     {Points: []Point{{0, 0}, {math.MaxInt64, math.MaxInt64}}, Outages: []Outage{{Start: math.MaxInt64 / 2, End: math.MaxInt64}}},
		"tiny values":     {Points: []Point{{0, 0}, {time.Nanosecond, 1}}},
		"bad utf8 label":  {Title: "bad \xff\x00 title", Outages: []Outage{{Start: 0, End: time.Second, Label: "\x01\xfe]]>"}}},
	} {
		t.Run(name, func(t *testing.T) {
			doc := render(t, c)
			checkFinite(t, doc)
			els := parseSVG(t, doc)
			if got := find(els, "rect", "outage"); len(got) != len(c.Outages) {
				t.Errorf("got %d outage rects, want %d", len(got), len(c.Outages))
			}
			for _, r := range find(els, "rect", "outage") {
				if w := attrF(t, r, "width"); w <= 0 {
					t.Errorf("outage rect width %v", w)
				}
				if x := attrF(t, r, "x"); x < marginLeft-0.01 || x+attrF(t, r, "width") > attrF(t, els[0], "width")-marginRight+0.01 {
					t.Errorf("outage rect outside plot area: %+v", r.attrs)
				}
			}
			pl := find(els, "polyline", "progress")
			switch {
			case len(c.Points) == 0 && len(pl) != 0:
				t.Errorf("polyline drawn with no points")
			case len(c.Points) > 0 && len(pl) == 1 && len(polylinePoints(t, els)) != len(c.Points):
				t.Errorf("polyline has %d points, want %d", len(polylinePoints(t, els)), len(c.Points))
			case len(c.Points) > 0 && len(pl) != 1:
				t.Errorf("got %d polylines, want 1", len(pl))
			}
			if len(find(els, "text", "xtick")) < 2 || len(find(els, "text", "ytick")) < 2 {
				t.Errorf("axis has fewer than 2 ticks")
			}
		})
	}
}

func TestOpenOutageExtendsToAxisEnd(t *testing.T) {
	c := &Chart{
		Points:  []Point{{0, 0}, {10 * time.Second, 10 * mib}},
		Outages: []Outage{{Start: 6 * time.Second, Label: "cut 1 (open)"}},
	}
	els := parseSVG(t, render(t, c))
	xt := tickPositions(t, els, "xtick", "x")
	r := find(els, "rect", "outage")[0]
	x, w := attrF(t, r, "x"), attrF(t, r, "width")
	if !near(x, xt["0"]+0.6*(xt["10"]-xt["0"])) || !near(x+w, xt["10"]) {
		t.Errorf("open outage rect x=%v w=%v, want from 6s to axis end %v", x, w, xt["10"])
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("boom") }

func TestWriteError(t *testing.T) {
	c := &Chart{Points: []Point{{0, 0}, {time.Second, 1}}}
	if err := c.WriteSVG(failWriter{}); err == nil {
		t.Fatal("WriteSVG ignored the writer's error")
	}
}

// exampleChart is a realistic demo: a 30 s transfer at ~4 MiB/s sampled
// every 10 ms, cut twice, with resumes after each cut.
func exampleChart() *Chart {
	c := &Chart{
		Title: "rsftp: progress of an SFTP transfer before, during and after reconnection",
		Outages: []Outage{
			{Start: 8 * time.Second, End: 11400 * time.Millisecond, Label: "cut 1 (blackhole)"},
			{Start: 20 * time.Second, End: 20600 * time.Millisecond, Label: "cut 2 (RST)"},
			{Start: 29500 * time.Millisecond, Label: "cut 3 (open)"},
		},
		Resumes: []time.Duration{11400 * time.Millisecond, 20600 * time.Millisecond},
	}
	var b int64
	const rate = 4 * mib / 100 // bytes per 10 ms
	for i := 0; i <= 3000; i++ {
		t := time.Duration(i) * 10 * time.Millisecond
		down := false
		for _, o := range c.Outages {
			if t >= o.Start && (o.End == 0 || t < o.End) {
				down = true
			}
		}
		if !down {
			b += rate + int64(i%7)*1000
		}
		c.Points = append(c.Points, Point{T: t, Bytes: b})
	}
	return c
}

func TestExample(t *testing.T) {
	doc := render(t, exampleChart())
	checkFinite(t, doc)
	els := parseSVG(t, doc)
	if n := len(polylinePoints(t, els)); n > MaxPolylinePoints {
		t.Errorf("polyline has %d points", n)
	}
	if os.Getenv("SVGPLOT_EXAMPLE") == "1" {
		const path = "/tmp/svgplot-example.svg"
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(doc))
	}
}
