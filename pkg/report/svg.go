package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
)

// chart is an SVG chart as data. The "chart" template renders it, so every
// label goes through html/template's escaping; nothing here is markup.
// Colours are CSS classes (light and dark values in the style sheet), and
// text uses the page's colour, so a chart follows prefers-color-scheme.
type chart struct {
	Width, Height int
	Label         string // the accessible name
	Lines         []svgLine
	Rects         []svgRect
	Polylines     []svgPolyline
	Dots          []svgDot
	Texts         []svgText
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type svgRect struct {
	X, Y, W, H   float64
	Class, Title string
}

// svgPolyline's Points holds numbers only ("x,y x,y").
type svgPolyline struct {
	Points string
	Class  string
}

type svgDot struct {
	X, Y, R      float64
	Class, Title string
}

type svgText struct {
	X, Y                       float64
	Anchor, Class, Text, Title string
}

// frame is a chart's plot area inside its margins.
type frame struct{ left, top, width, height float64 }

func (f frame) right() float64  { return f.left + f.width }
func (f frame) bottom() float64 { return f.top + f.height }

// Chart geometry (SVG user units; the page scales the viewBox to fit).
const (
	wideChartWidth = 1100
	dayChartHeight = 280
	barChartWidth  = 600
	barRowHeight   = 42
	labelRunes     = 82 // bar labels longer than this are cut in the middle
)

func dayFrame() frame {
	return frame{left: 56, top: 14, width: wideChartWidth - 56 - 16, height: dayChartHeight - 14 - 40}
}

// slotX is the centre of day i of n across the frame.
func (f frame) slotX(i, n int) float64 { return f.left + (float64(i)+0.5)*f.width/float64(n) }

// yGrid draws horizontal grid lines and their labels at ticks (values in
// [0, top]).
func (c *chart) yGrid(f frame, ticks []float64, top float64, label func(float64) string) {
	for _, t := range ticks {
		y := f.bottom() - f.height*t/top
		c.Lines = append(c.Lines, svgLine{X1: f.left, Y1: y, X2: f.right(), Y2: y, Class: "grid"})
		c.Texts = append(c.Texts, svgText{X: f.left - 8, Y: y + 4, Anchor: "end", Class: "tick", Text: label(t)})
	}
	c.Lines = append(c.Lines,
		svgLine{X1: f.left, Y1: f.top, X2: f.left, Y2: f.bottom(), Class: "axis"},
		svgLine{X1: f.left, Y1: f.bottom(), X2: f.right(), Y2: f.bottom(), Class: "axis"})
}

// dayTicks labels about a dozen days along the x axis.
func (c *chart) dayTicks(f frame, days []Day) {
	n := len(days)
	step := max(1, int(math.Ceil(float64(n)/12)))
	layout := "Jan 2"
	if n > 0 && days[0].Date.Year() != days[n-1].Date.Year() {
		layout = "2006-01-02"
	}
	for i := 0; i < n; i += step {
		x := f.slotX(i, n)
		c.Lines = append(c.Lines, svgLine{X1: x, Y1: f.bottom(), X2: x, Y2: f.bottom() + 5, Class: "axis"})
		c.Texts = append(c.Texts, svgText{X: x, Y: f.bottom() + 20, Anchor: "middle", Class: "tick", Text: days[i].Date.Format(layout)})
	}
	c.Texts = append(c.Texts, svgText{X: f.left + f.width/2, Y: f.bottom() + 36, Anchor: "middle", Class: "axis-title", Text: "day (UTC)"})
}

// rateChart is the tracked rate per day as a line; days without a
// classified event break the line.
func rateChart(days []Day) *chart {
	f := dayFrame()
	c := &chart{Width: wideChartWidth, Height: dayChartHeight, Label: "Tracked rate per day, 0 to 100 percent"}
	c.yGrid(f, []float64{0, 25, 50, 75, 100}, 100, func(v float64) string { return fmt.Sprintf("%.0f%%", v) })
	c.dayTicks(f, days)
	var seg []string
	flush := func() {
		if len(seg) > 1 {
			c.Polylines = append(c.Polylines, svgPolyline{Points: strings.Join(seg, " "), Class: "rate"})
		}
		seg = seg[:0]
	}
	for i, d := range days {
		r, ok := d.TrackedRate()
		if !ok {
			flush()
			continue
		}
		x, y := f.slotX(i, len(days)), f.bottom()-f.height*r
		seg = append(seg, num(x)+","+num(y))
		c.Dots = append(c.Dots, svgDot{X: x, Y: y, R: 3.5, Class: "rate", Title: fmt.Sprintf("%s: %s tracked (%s of %s events)",
			d.Date.Format("2006-01-02"), percent(r, ok), thousands(d.Tracked), thousands(d.Events))})
	}
	flush()
	return c
}

// findingsChart is the findings per day, stacked by verdict in the
// contract's order.
func findingsChart(days []Day, verdicts []classify.Verdict) *chart {
	f := dayFrame()
	c := &chart{Width: wideChartWidth, Height: dayChartHeight, Label: "Findings per day, stacked by verdict"}
	most := 0
	for _, d := range days {
		most = max(most, d.Findings)
	}
	top, ticks := niceTicks(most)
	c.yGrid(f, ticks, top, func(v float64) string { return thousands(int(v)) })
	c.dayTicks(f, days)
	slot := f.width / float64(max(1, len(days)))
	w := math.Max(1, math.Min(slot*0.72, 48))
	for i, d := range days {
		x := f.slotX(i, len(days)) - w/2
		y := f.bottom()
		for _, v := range verdicts {
			n := d.PerVerdict[v]
			if n == 0 {
				continue
			}
			h := f.height * float64(n) / top
			y -= h
			c.Rects = append(c.Rects, svgRect{X: x, Y: y, W: w, H: h, Class: verdictClass(v),
				Title: fmt.Sprintf("%s · %s: %s", d.Date.Format("2006-01-02"), v, thousands(n))})
		}
	}
	if most == 0 {
		c.Texts = append(c.Texts, svgText{X: f.left + f.width/2, Y: f.top + f.height/2, Anchor: "middle", Class: "empty", Text: "no findings"})
	}
	return c
}

// barChart ranks keys by findings as horizontal bars, each labelled above
// its bar (an ARN needs the width).
func barChart(label string, counts []Count) *chart {
	c := &chart{Width: barChartWidth, Label: label}
	if len(counts) == 0 {
		c.Height = 40
		c.Texts = append(c.Texts, svgText{X: barChartWidth / 2, Y: 24, Anchor: "middle", Class: "empty", Text: "no findings"})
		return c
	}
	c.Height = len(counts)*barRowHeight + 6
	most := counts[0].Findings
	room := float64(barChartWidth - 70) // leave room for the count
	for i, n := range counts {
		y := float64(i*barRowHeight) + 4
		key := printable(n.Key)
		c.Texts = append(c.Texts, svgText{X: 0, Y: y + 13, Class: "bar-label", Text: truncateMiddle(key, labelRunes), Title: key})
		w := math.Max(2, room*float64(n.Findings)/float64(max(most, 1)))
		c.Rects = append(c.Rects, svgRect{X: 0, Y: y + 19, W: w, H: 14, Class: "bar", Title: fmt.Sprintf("%s: %s findings", key, thousands(n.Findings))})
		c.Texts = append(c.Texts, svgText{X: w + 6, Y: y + 31, Class: "bar-value", Text: thousands(n.Findings)})
	}
	return c
}

// niceTicks returns an axis top of at least most and ticks at a step of 1,
// 2 or 5 times a power of ten (at most 6 ticks, 0 included).
func niceTicks(most int) (top float64, ticks []float64) {
	if most <= 0 {
		return 1, []float64{0, 1}
	}
	raw := float64(most) / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * pow; step >= raw {
			break
		}
	}
	step = math.Max(1, step)
	top = math.Ceil(float64(most)/step) * step
	for t := 0.0; t <= top+step/2; t += step {
		ticks = append(ticks, t)
	}
	return top, ticks
}

// num formats an SVG coordinate.
func num(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// verdictClass is the CSS class carrying a verdict's colour.
func verdictClass(v classify.Verdict) string {
	for i, k := range append(classify.AllVerdicts(), classify.PipelineTampered) {
		if k == v {
			return "v" + strconv.Itoa(i)
		}
	}
	return "vx"
}
