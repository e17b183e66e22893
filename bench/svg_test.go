package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgDoc is what the tests read back from a plot.
type svgDoc struct {
	Width     int `xml:"width,attr"`
	Height    int `xml:"height,attr"`
	Polylines []struct {
		Stroke string `xml:"stroke,attr"`
		Dash   string `xml:"stroke-dasharray,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	require.NoError(t, xml.Unmarshal(b, &doc))
	return doc
}

// coords parses a polyline's points attribute.
func coords(t *testing.T, s string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, p := range strings.Fields(s) {
		x, y, ok := strings.Cut(p, ",")
		require.True(t, ok, p)
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		out = append(out, [2]float64{fx, fy})
	}
	return out
}

func TestWritePlot(t *testing.T) {
	series := []Series{
		{Name: "3pc <fast> & 'so'", Points: []Point{{0, 1000}, {1, 2000}, {2, 10_000}, {3, 100_000}}},
		{Name: "2pc", Points: []Point{{0, 900}, {2.5, 50_000}}},
	}
	var b bytes.Buffer
	require.NoError(t, WritePlot(&b, "title & more", series))
	doc := parseSVG(t, b.Bytes())
	assert.Equal(t, plotW, doc.Width)
	require.Len(t, doc.Polylines, 2)
	assert.Equal(t, palette[0], doc.Polylines[0].Stroke)
	assert.Equal(t, palette[1], doc.Polylines[1].Stroke)
	assert.Contains(t, doc.Texts, "3pc <fast> & 'so'", "legend names are escaped and read back intact")
	assert.Contains(t, doc.Texts, "title & more")
	for _, label := range []string{"0%", "90%", "99%", "99.9%", "100 ns", "1 µs", "100 µs", "percentile"} {
		assert.Contains(t, doc.Texts, label)
	}
	assert.NotContains(t, doc.Texts, "99.99%", "the x axis ends at the last nine any series reaches")

	// x: 0 to 3 nines across the plot's width; y: 100 ns to 100 µs (three
	// decades) from the bottom to the top.
	p := coords(t, doc.Polylines[0].Points)
	require.Len(t, p, 4)
	bottom, top := float64(padTop+innerH), float64(padTop)
	decade := float64(innerH) / 3
	assert.InDelta(t, padLeft, p[0][0], 0.05)
	assert.InDelta(t, bottom-decade, p[0][1], 0.05) // 1 µs, a decade above 100 ns
	assert.InDelta(t, padLeft+innerW/3.0, p[1][0], 0.05)
	assert.InDelta(t, padLeft+innerW, p[3][0], 0.05)
	assert.InDelta(t, top, p[3][1], 0.05) // 100 µs
	q := coords(t, doc.Polylines[1].Points)
	assert.InDelta(t, padLeft+innerW*2.5/3, q[1][0], 0.05)
	assert.Less(t, q[0][1], bottom, "900 ns sits above the 100 ns floor")
}

func TestWritePlotDashesPastThePalette(t *testing.T) {
	var series []Series
	for i := range len(palette) + 2 {
		series = append(series, Series{Name: strconv.Itoa(i), Points: []Point{{0, 1000}, {1, 3000}}})
	}
	var b bytes.Buffer
	require.NoError(t, WritePlot(&b, "many", series))
	doc := parseSVG(t, b.Bytes())
	require.Len(t, doc.Polylines, len(palette)+2)
	assert.Empty(t, doc.Polylines[len(palette)-1].Dash)
	assert.NotEmpty(t, doc.Polylines[len(palette)].Dash)
	assert.Equal(t, doc.Polylines[0].Stroke, doc.Polylines[len(palette)].Stroke)
}

func TestWritePlotRejectsEmpty(t *testing.T) {
	require.Error(t, WritePlot(io.Discard, "none", nil))
	require.Error(t, WritePlot(io.Discard, "empty", []Series{{Name: "x"}}))
}

func TestNinesLabel(t *testing.T) {
	assert.Equal(t, []string{"0%", "90%", "99%", "99.9%", "99.99%"},
		[]string{ninesLabel(0), ninesLabel(1), ninesLabel(2), ninesLabel(3), ninesLabel(4)})
}

// TestHgrmRoundTrip writes a histogram in the percentile format and reads
// it back: the same points the histogram gives directly, and its p90.
func TestHgrmRoundTrip(t *testing.T) {
	h := NewHistogram()
	for i := int64(1); i <= 10_000; i++ {
		clampRecord(h, i*100) // 100 ns to 1 ms, uniform
	}
	var b bytes.Buffer
	require.NoError(t, WriteHgrm(&b, h))
	assert.True(t, strings.HasPrefix(b.String(), " Value\tPercentile\tTotalCount\t1/(1-Percentile)"))
	pts, p90, err := ParseHgrm(&b)
	require.NoError(t, err)
	assert.True(t, h.ValuesAreEquivalent(h.ValueAtQuantile(90), p90), "p90 %d vs %d", p90, h.ValueAtQuantile(90))
	want := PointsOf(h)
	require.Len(t, pts, len(want))
	for i := range want {
		assert.InDelta(t, want[i].Nines, pts[i].Nines, 0.01, "point %d (the file rounds percentiles to 6 places)", i)
		assert.InDelta(t, want[i].Nanos, pts[i].Nanos, 1, "point %d", i)
	}
	last := pts[len(pts)-1]
	assert.InDelta(t, 4, last.Nines, 1e-9, "the max sits at log10(count)")
	_, _, err = ParseHgrm(strings.NewReader("garbage\n"))
	require.ErrorIs(t, err, ErrHgrm)
	_, _, err = ParseHgrm(strings.NewReader("1.0 2.0 x 4\n"))
	require.ErrorIs(t, err, ErrHgrm)
}
