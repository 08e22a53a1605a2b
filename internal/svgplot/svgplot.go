// Package svgplot draws the "progress of an SFTP transfer before, during and
// after reconnection" figure used by `rsftp demo`: cumulative bytes over
// time as a line, connection outages as shaded bands, and the instants the
// session resumed as markers. The output is a standalone SVG document that
// depends on nothing but the standard library to produce.
package svgplot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Point is one sample of transfer progress.
type Point struct {
	T     time.Duration // time since the start of the transfer
	Bytes int64         // cumulative bytes transferred at T
}

// Outage is an interval during which the connection was down.
type Outage struct {
	Start, End time.Duration // End == 0 means the outage was still open at the end
	Label      string        // e.g. "cut 1 (blackhole)"
}

// Chart describes the figure. The zero value (plus data) is usable.
type Chart struct {
	Title   string
	Points  []Point         // non-decreasing T
	Outages []Outage        // drawn as semi-transparent red bands
	Resumes []time.Duration // instants the session resumed
	Width   int             // pixels; default 800
	Height  int             // pixels; default 400
}

const (
	// DefaultWidth and DefaultHeight are used when Chart.Width/Height are <= 0.
	DefaultWidth  = 800
	DefaultHeight = 400

	// MaxPolylinePoints bounds the number of vertices of the progress line.
	MaxPolylinePoints = 2000

	minWidth, minHeight = 240, 180
	maxDim              = 20000

	marginLeft   = 72
	marginRight  = 24
	marginTop    = 40
	marginBottom = 74

	fontSize      = 12
	smallFontSize = 11
	titleFontSize = 15

	colorLine   = "#1f5fbf"
	colorOutage = "#d62728"
	colorResume = "#2ca02c"
	colorGrid   = "#e3e3e3"
	colorAxis   = "#333333"

	mib = 1 << 20

	// labelHalo keeps band labels readable where they cross the line.
	labelHalo = ` stroke="white" stroke-width="3" stroke-opacity="0.8" paint-order="stroke"`
)

// layout holds the resolved geometry and scales of one rendering.
type layout struct {
	width, height         int
	left, right, top, bot float64 // plot area in pixels
	tMax, tStep           float64 // x axis upper bound and tick step, seconds
	yMax, yStep           float64 // y axis upper bound and tick step, MiB
	points                []Point // sorted, clamped copy of Chart.Points
}

func (l *layout) x(sec float64) float64 {
	return l.left + sec/l.tMax*(l.right-l.left)
}

func (l *layout) y(mibVal float64) float64 {
	return l.bot - mibVal/l.yMax*(l.bot-l.top)
}

func secs(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

func clampDim(v, def, lo int) int {
	if v <= 0 {
		return def
	}
	return min(max(v, lo), maxDim)
}

func (c *Chart) layout() *layout {
	l := &layout{
		width:  clampDim(c.Width, DefaultWidth, minWidth),
		height: clampDim(c.Height, DefaultHeight, minHeight),
	}
	l.left = marginLeft
	l.right = float64(l.width - marginRight)
	l.top = marginTop
	l.bot = float64(l.height - marginBottom)

	// Sorted copy with negative values clamped, so that a caller violating
	// the ordering contract still gets a sensible picture.
	l.points = make([]Point, len(c.Points))
	for i, p := range c.Points {
		l.points[i] = Point{T: max(p.T, 0), Bytes: max(p.Bytes, 0)}
	}
	slices.SortStableFunc(l.points, func(a, b Point) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})

	var tEnd float64
	var bMax int64
	for _, p := range l.points {
		tEnd = max(tEnd, secs(p.T))
		bMax = max(bMax, p.Bytes)
	}
	for _, o := range c.Outages {
		tEnd = max(tEnd, secs(o.Start), secs(o.End))
	}
	for _, r := range c.Resumes {
		tEnd = max(tEnd, secs(r))
	}
	if tEnd <= 0 {
		tEnd = 1
	}
	yEnd := float64(bMax) / mib
	if yEnd <= 0 {
		yEnd = 1
	}

	xTarget := min(max(int((l.right-l.left)/70), 2), 15)
	yTarget := min(max(int((l.bot-l.top)/40), 2), 12)
	l.tStep, l.tMax = niceAxis(tEnd, xTarget)
	l.yStep, l.yMax = niceAxis(yEnd, yTarget)
	return l
}

// niceStep returns a step of the form {1,2,5}×10^n such that span/step is
// close to (at most) target.
func niceStep(span float64, target int) float64 {
	if !(span > 0) || math.IsInf(span, 0) || target < 1 {
		return 1
	}
	raw := span / float64(target)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	if mag == 0 || math.IsInf(mag, 0) || math.IsNaN(mag) {
		return 1
	}
	r := raw / mag
	switch {
	case r <= 1:
		return mag
	case r <= 2:
		return 2 * mag
	case r <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// niceAxis returns the tick step and the axis maximum (a multiple of the
// step that is >= max).
func niceAxis(maxVal float64, target int) (step, axisMax float64) {
	step = niceStep(maxVal, target)
	n := math.Ceil(maxVal/step - 1e-9)
	if n < 1 {
		n = 1
	}
	return step, n * step
}

// decimals returns how many fractional digits are needed to print multiples
// of step exactly.
func decimals(step float64) int {
	if step >= 1 || !(step > 0) {
		return 0
	}
	return min(int(-math.Floor(math.Log10(step)+1e-9)), 12)
}

func tickLabel(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if s == "-0" || strings.Trim(s, "-0.") == "" {
		return "0"
	}
	return s
}

// num formats a coordinate; non-finite values (which the layout never
// produces) are rendered as 0 so the output is always valid.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" || s == "" {
		return "0"
	}
	return s
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // strings.Builder never fails
	return b.String()
}

// textWidth is a rough estimate of the rendered width of s in pixels.
func textWidth(s string, size float64) float64 {
	return float64(len([]rune(s))) * size * 0.6
}

// decimate keeps at most MaxPolylinePoints points: the time range is split
// into MaxPolylinePoints/2 buckets and the first and last sample of each
// bucket are kept. For cumulative (monotone) data this preserves the shape,
// including flat stretches during outages.
func decimate(pts []Point) []Point {
	if len(pts) <= MaxPolylinePoints {
		return pts
	}
	nb := MaxPolylinePoints / 2
	t0, t1 := secs(pts[0].T), secs(pts[len(pts)-1].T)
	span := t1 - t0
	bucket := func(p Point) int {
		if !(span > 0) {
			return 0
		}
		return min(max(int((secs(p.T)-t0)/span*float64(nb)), 0), nb-1)
	}
	out := make([]Point, 0, MaxPolylinePoints)
	runStart := 0
	for i := 1; i <= len(pts); i++ {
		if i < len(pts) && bucket(pts[i]) == bucket(pts[runStart]) {
			continue
		}
		out = append(out, pts[runStart])
		if i-1 > runStart {
			out = append(out, pts[i-1])
		}
		runStart = i
	}
	return out
}

// bytesAt interpolates the cumulative byte count at time t (seconds).
func bytesAt(pts []Point, t float64) float64 {
	if len(pts) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(pts, t, func(p Point, t float64) int {
		switch s := secs(p.T); {
		case s < t:
			return -1
		case s > t:
			return 1
		}
		return 0
	})
	// pts[i] is the first point with T >= t.
	if i >= len(pts) {
		return float64(pts[len(pts)-1].Bytes)
	}
	if i == 0 {
		if secs(pts[0].T) == t {
			return float64(pts[0].Bytes)
		}
		return 0
	}
	a, b := pts[i-1], pts[i]
	ta, tb := secs(a.T), secs(b.T)
	if tb <= ta {
		return float64(b.Bytes)
	}
	f := (t - ta) / (tb - ta)
	return float64(a.Bytes) + f*float64(b.Bytes-a.Bytes)
}

func fmtSeconds(t float64) string {
	return strconv.FormatFloat(t, 'f', 3, 64) + "s"
}

// WriteSVG renders the chart as a standalone SVG document.
func (c *Chart) WriteSVG(w io.Writer) error {
	l := c.layout()
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	W, H := l.width, l.height
	p("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">`+"\n",
		W, H, W, H, fontSize)
	title := c.Title
	if title != "" {
		p("<title>%s</title>\n", esc(title))
	}
	p(`<rect class="background" x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", W, H)
	if title != "" {
		p(`<text class="title" x="%s" y="%d" text-anchor="middle" font-size="%d" font-weight="bold">%s</text>`+"\n",
			num(float64(W)/2), marginTop/2+5, titleFontSize, esc(title))
	}

	// Grid and ticks.
	tDec, yDec := decimals(l.tStep), decimals(l.yStep)
	nx := int(math.Round(l.tMax / l.tStep))
	ny := int(math.Round(l.yMax / l.yStep))
	p(`<g class="grid" stroke="%s" stroke-width="1">`+"\n", colorGrid)
	for i := 1; i <= nx; i++ {
		x := num(l.x(float64(i) * l.tStep))
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", x, num(l.top), x, num(l.bot))
	}
	for i := 1; i <= ny; i++ {
		y := num(l.y(float64(i) * l.yStep))
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(l.left), y, num(l.right), y)
	}
	p("</g>\n")

	// Outage bands (behind the progress line).
	if len(c.Outages) > 0 {
		p(`<g class="outages">` + "\n")
		for _, o := range c.Outages {
			s := min(secs(o.Start), l.tMax)
			e := l.tMax // still open: extend to the end of the axis
			if o.End != 0 {
				e = min(secs(o.End), l.tMax)
			}
			if e < s {
				s, e = e, s
			}
			x0, x1 := l.x(s), l.x(e)
			width := x1 - x0
			if width < 1 { // keep instantaneous outages visible
				width = 1
				x0 = min(x0, l.right-1)
			}
			tip := o.Label
			if tip != "" {
				tip += ": "
			}
			if o.End == 0 {
				tip += fmt.Sprintf("%s – (still open)", fmtSeconds(s))
			} else {
				tip += fmt.Sprintf("%s – %s", fmtSeconds(s), fmtSeconds(e))
			}
			p(`<rect class="outage" x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="0.18" stroke="%s" stroke-opacity="0.45" stroke-width="1"><title>%s</title></rect>`+"\n",
				num(x0), num(l.top), num(width), num(l.bot-l.top), colorOutage, colorOutage, esc(tip))
			if o.Label == "" {
				continue
			}
			// Horizontal label if it fits in the band, otherwise vertical
			// along the band, reading top to bottom.
			if textWidth(o.Label, smallFontSize)+6 <= width {
				p(`<text class="outage-label" x="%s" y="%s" text-anchor="middle" font-size="%d" fill="%s"`+labelHalo+`>%s</text>`+"\n",
					num(x0+width/2), num(l.top+smallFontSize+3), smallFontSize, colorOutage, esc(o.Label))
			} else {
				// rotate(90) puts the glyphs to the right of the
				// baseline, so shift left by about half a cap height.
				lx, ly := x0+width/2-smallFontSize*0.35, l.top+4
				if lx+smallFontSize > l.right {
					lx = x0 - smallFontSize // no room: just left of the band
				}
				p(`<text class="outage-label" x="%s" y="%s" transform="rotate(90 %s %s)" font-size="%d" fill="%s"`+labelHalo+`>%s</text>`+"\n",
					num(lx), num(ly), num(lx), num(ly), smallFontSize, colorOutage, esc(o.Label))
			}
		}
		p("</g>\n")
	}

	// Axes.
	p(`<g class="axes" stroke="%s" stroke-width="1">`+"\n", colorAxis)
	p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(l.left), num(l.bot), num(l.right), num(l.bot))
	p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(l.left), num(l.top), num(l.left), num(l.bot))
	for i := 0; i <= nx; i++ {
		x := num(l.x(float64(i) * l.tStep))
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", x, num(l.bot), x, num(l.bot+5))
	}
	for i := 0; i <= ny; i++ {
		y := num(l.y(float64(i) * l.yStep))
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(l.left-5), y, num(l.left), y)
	}
	p("</g>\n")
	p(`<g class="tick-labels" fill="%s" font-size="%d">`+"\n", colorAxis, smallFontSize)
	for i := 0; i <= nx; i++ {
		v := float64(i) * l.tStep
		p(`<text class="xtick" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n",
			num(l.x(v)), num(l.bot+18), esc(tickLabel(v, tDec)))
	}
	for i := 0; i <= ny; i++ {
		v := float64(i) * l.yStep
		p(`<text class="ytick" x="%s" y="%s" text-anchor="end">%s</text>`+"\n",
			num(l.left-8), num(l.y(v)+4), esc(tickLabel(v, yDec)))
	}
	p("</g>\n")
	p(`<text class="axis-title" x="%s" y="%s" text-anchor="middle" fill="%s">%s</text>`+"\n",
		num((l.left+l.right)/2), num(l.bot+38), colorAxis, esc("time since start (s)"))
	yx, yy := 18.0, (l.top+l.bot)/2
	p(`<text class="axis-title" x="%s" y="%s" text-anchor="middle" fill="%s" transform="rotate(-90 %s %s)">%s</text>`+"\n",
		num(yx), num(yy), colorAxis, num(yx), num(yy), esc("transferred (MiB)"))

	// Progress line.
	pts := decimate(l.points)
	if len(pts) > 0 {
		var sb strings.Builder
		for i, pt := range pts {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(num(l.x(secs(pt.T))))
			sb.WriteByte(',')
			sb.WriteString(num(l.y(float64(pt.Bytes) / mib)))
		}
		p(`<polyline class="progress" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" points="%s"/>`+"\n",
			colorLine, sb.String())
		if len(pts) == 1 { // a single vertex draws nothing; mark it
			p(`<circle class="progress-point" cx="%s" cy="%s" r="3" fill="%s"/>`+"\n",
				num(l.x(secs(pts[0].T))), num(l.y(float64(pts[0].Bytes)/mib)), colorLine)
		}
	} else {
		p(`<text class="no-data" x="%s" y="%s" text-anchor="middle" fill="#888888">%s</text>`+"\n",
			num((l.left+l.right)/2), num((l.top+l.bot)/2), esc("no data"))
	}

	// Resume markers: a dashed vertical tick plus a dot on the progress line.
	if len(c.Resumes) > 0 {
		p(`<g class="resumes" stroke="%s" fill="%s">`+"\n", colorResume, colorResume)
		for _, r := range c.Resumes {
			t := min(secs(r), l.tMax)
			x := num(l.x(t))
			y := l.y(bytesAt(l.points, t) / mib)
			p(`<g class="resume"><title>%s</title>`, esc("resumed at "+fmtSeconds(t)))
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke-width="1.5" stroke-dasharray="4 3" stroke-opacity="0.8"/>`,
				x, num(l.top), x, num(l.bot))
			p(`<circle cx="%s" cy="%s" r="4" stroke="white" stroke-width="1"/></g>`+"\n", x, num(y))
		}
		p("</g>\n")
	}

	// Legend: one row in the bottom margin, below the x axis title, so it
	// never hides data, bands or their labels.
	type entry struct{ kind, label string }
	entries := []entry{{"line", "bytes transferred"}}
	if len(c.Outages) > 0 {
		entries = append(entries, entry{"outage", "connection outage"})
	}
	if len(c.Resumes) > 0 {
		entries = append(entries, entry{"resume", "session resumed"})
	}
	const swatch, gap = 30.0, 22.0
	total := -gap
	for _, e := range entries {
		total += swatch + textWidth(e.label, smallFontSize) + gap
	}
	// Centre under the plot; shrink the row if the picture is too narrow.
	k := min(1, (float64(W)-8)/total)
	lx := max((l.left+l.right-total*k)/2, 4)
	scale := ""
	if k < 1 {
		scale = " scale(" + strconv.FormatFloat(k, 'f', 4, 64) + ")"
	}
	p(`<g class="legend" font-size="%d" transform="translate(%s %s)%s">`+"\n",
		smallFontSize, num(lx), num(float64(H)-14), scale)
	x := 0.0
	for _, e := range entries {
		switch e.kind {
		case "line":
			p(`<line x1="%s" y1="0" x2="%s" y2="0" stroke="%s" stroke-width="2"/>`+"\n",
				num(x), num(x+22), colorLine)
		case "outage":
			p(`<rect x="%s" y="-5" width="22" height="10" fill="%s" fill-opacity="0.18" stroke="%s" stroke-opacity="0.45"/>`+"\n",
				num(x), colorOutage, colorOutage)
		case "resume":
			p(`<line x1="%s" y1="-7" x2="%s" y2="7" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n",
				num(x+11), num(x+11), colorResume)
			p(`<circle cx="%s" cy="0" r="4" fill="%s" stroke="white"/>`+"\n", num(x+11), colorResume)
		}
		p(`<text x="%s" y="4" fill="%s">%s</text>`+"\n", num(x+swatch), colorAxis, esc(e.label))
		x += swatch + textWidth(e.label, smallFontSize) + gap
	}
	p("</g>\n")
	p("</svg>\n")

	_, err := w.Write(b.Bytes())
	return err
}
