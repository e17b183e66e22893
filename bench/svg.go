package bench

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Point is one point of a percentile plot: Nines is the percentile on the
// "nines" scale, log10(1/(1-p)) (0 is 0 %, 1 is 90 %, 2 is 99 %, 3 is
// 99.9 %…), and Nanos the latency at it.
type Point struct {
	Nines, Nanos float64
}

// nines maps a percentile in [0, 100] to the nines scale, capped at
// log10(total): a distribution of total samples says nothing beyond its
// max, which sits at that cap.
func nines(pct float64, total int64) float64 {
	limit := math.Log10(float64(max(total, 1)))
	if pct >= 100 {
		return limit
	}
	return min(math.Log10(100/(100-pct)), limit)
}

// PointsOf returns h's percentile distribution as plot points, at the
// percentiles HdrHistogram's percentile output uses (five ticks per half
// distance to 100 %).
func PointsOf(h *hdrhistogram.Histogram) []Point {
	if h.TotalCount() == 0 {
		return nil
	}
	var pts []Point
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		pts = append(pts, Point{Nines: nines(b.Quantile, h.TotalCount()), Nanos: float64(b.ValueAt)})
	}
	return pts
}

// WriteHgrm writes h in HdrHistogram's percentile-distribution format
// (values in microseconds, as HdrHistogram's plotters expect).
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	_, err := h.PercentilesPrint(w, 5, 1000)
	return err
}

// ErrHgrm is wrapped by ParseHgrm's errors.
var ErrHgrm = errors.New("bench: malformed .hgrm")

// ParseHgrm reads a percentile distribution written by WriteHgrm (or any
// HdrHistogram PercentilesPrint with values in microseconds) as plot
// points, and returns the value at the 90th percentile too: the first
// listed value at or past it, as the histogram itself would answer.
func ParseHgrm(r io.Reader) (pts []Point, p90 int64, err error) {
	type row struct {
		us, q float64
		count int64
	}
	var rows []row
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || strings.HasPrefix(f[0], "#") || f[0] == "Value" {
			continue
		}
		us, err1 := strconv.ParseFloat(f[0], 64)
		q, err2 := strconv.ParseFloat(f[1], 64)
		n, err3 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil || q < 0 || q > 1 {
			return nil, 0, fmt.Errorf("%w: line %q", ErrHgrm, sc.Text())
		}
		rows = append(rows, row{us, q, n})
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read .hgrm: %w", err)
	}
	if len(rows) == 0 {
		return nil, 0, fmt.Errorf("%w: no percentile lines", ErrHgrm)
	}
	total := rows[len(rows)-1].count
	p90 = -1
	for _, rw := range rows {
		ns := rw.us * 1000
		pts = append(pts, Point{Nines: nines(100*rw.q, total), Nanos: ns})
		if p90 < 0 && rw.q >= 0.9 {
			p90 = int64(math.Round(ns))
		}
	}
	return pts, p90, nil
}

// Series is one line of a percentile plot.
type Series struct {
	Name   string
	Points []Point
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH                                 = 960, 560
	padLeft, padRight, padTop, padBottom         = 80, 300, 48, 60
	plotMaxNines                                 = 6
	legendRow                                    = 18
	innerW                                       = plotW - padLeft - padRight
	innerH                                       = plotH - padTop - padBottom
	legendX                                      = plotW - padRight + 16
	dashFromSeries                               = 10
	minPlotNanos                         float64 = 1
)

// palette is the lines' colours (Tableau 10); past ten series the colours
// repeat dashed.
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// WritePlot draws series as an SVG percentile plot: latency on a log
// scale against the percentile on a log "nines" scale (50 %, 90 %, 99 %,
// 99.9 %…), one line per series, with a legend; the way HdrHistogram's
// plotter shows a distribution, so tails are as visible as medians.
func WritePlot(w io.Writer, title string, series []Series) error {
	if len(series) == 0 {
		return errors.New("bench: plot: no series")
	}
	lo, hi, xmax := math.Inf(1), math.Inf(-1), 1.0
	for _, s := range series {
		if len(s.Points) == 0 {
			return fmt.Errorf("bench: plot: series %q has no points", s.Name)
		}
		for _, p := range s.Points {
			v := max(p.Nanos, minPlotNanos)
			lo, hi = min(lo, v), max(hi, v)
			xmax = max(xmax, p.Nines)
		}
	}
	xmax = min(math.Ceil(xmax), plotMaxNines)
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi == ylo {
		yhi++
	}
	px := func(n float64) float64 { return padLeft + min(n, xmax)/xmax*innerW }
	py := func(ns float64) float64 {
		return padTop + (yhi-math.Log10(max(ns, minPlotNanos)))/(yhi-ylo)*innerH
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", padLeft, html.EscapeString(title))
	for k := 0.0; k <= xmax; k++ {
		x := px(k)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, padTop, x, padTop+innerH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, padTop+innerH+18, ninesLabel(int(k)))
	}
	for k := ylo; k <= yhi; k++ {
		y := py(math.Pow(10, k))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padLeft, y, padLeft+innerW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, y+4, FormatNanos(int64(math.Pow(10, k))))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", padLeft, padTop, innerW, innerH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", padLeft+innerW/2, plotH-12)
	fmt.Fprintf(&b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency (log scale)</text>`+"\n", padTop+innerH/2, padTop+innerH/2)
	for i, s := range series {
		color := palette[i%len(palette)]
		dash := ""
		if i >= dashFromSeries {
			dash = ` stroke-dasharray="6 3"`
		}
		b.WriteString(`<polyline fill="none" stroke-width="1.5" stroke="` + color + `"` + dash + ` points="`)
		for j, p := range s.Points {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", px(p.Nines), py(p.Nanos))
		}
		b.WriteString(`"/>` + "\n")
		y := padTop + i*legendRow
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`+"\n", legendX, y+8, legendX+20, y+8, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", legendX+26, y+12, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ninesLabel names the k-th nine: 0 %, 90 %, 99 %, 99.9 %…
func ninesLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	return strings.TrimSuffix("99."+strings.Repeat("9", k-2), ".") + "%"
}
