// Command bench-backfill writes one Prometheus TSDB block of synthetic samples for the query
// benchmark (scripts/bench_queries.py), with the same block writer `promtool tsdb
// create-blocks-from openmetrics` uses (tsdb.NewBlockWriter), without the text in between: at
// 10,000 pods the OpenMetrics file of two hours would be tens of gigabytes.
//
// Usage: bench-backfill OUT_DIR START_MS END_MS INTERVAL_MS < series.jsonl
//
// Each input line is one series: {"l": [name, value, ...], "k": "c"|"g", "v": start value,
// "r": rate per second (counters), "j": relative jitter, "o": the target's scrape offset (ms)}.
// Counters grow by r*interval*(1 +- j) per sample; gauges move around v by +-j (a slow wave and
// noise); j = 0 is a constant. Deterministic: the same input gives the same samples.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

type series struct {
	L []string `json:"l"`
	K string   `json:"k"`
	V float64  `json:"v"`
	R float64  `json:"r"`
	J float64  `json:"j"`
	O int64    `json:"o"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-backfill:", err)
		os.Exit(1)
	}
}

func arg(i int) int64 {
	v, err := strconv.ParseInt(os.Args[i], 10, 64)
	must(err)
	return v
}

// rnd: xorshift64*, one stream per series.
type rnd uint64

func (r *rnd) next() float64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rnd(x)
	return float64((x*2685821657736338717)>>11) / float64(1<<53)
}

func write(app storage.Appender, s series, idx int, start, end, step int64) (int, error) {
	lset := labels.FromStrings(s.L...)
	r := rnd(uint64(idx)*0x9E3779B97F4A7C15 + 1)
	phase := r.next() * 2 * math.Pi
	v := s.V
	var ref storage.SeriesRef
	n := 0
	for t := start + s.O; t <= end; t += step {
		switch {
		case s.K == "c":
			v += s.R * float64(step) / 1000 * (1 + s.J*(2*r.next()-1))
		case s.J != 0:
			wave := math.Sin(2*math.Pi*float64(t)/3.6e6 + phase)
			v = s.V * (1 + s.J*(0.7*wave+0.3*(2*r.next()-1)))
		}
		var err error
		ref, err = app.Append(ref, lset, t, v)
		if err != nil {
			return n, fmt.Errorf("series %v at %d: %w", s.L, t, err)
		}
		n++
	}
	return n, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: bench-backfill OUT_DIR START_MS END_MS INTERVAL_MS < series.jsonl")
		os.Exit(2)
	}
	out, start, end, step := os.Args[1], arg(2), arg(3), arg(4)
	// One block over the whole range. Series are written one after the other, each from start to
	// end, so the head must accept samples a whole span behind its newest: it does for half its
	// chunk range (the block size given here).
	w, err := tsdb.NewBlockWriter(slog.New(slog.NewTextHandler(os.Stderr, nil)), out, 4*(end-start+step))
	must(err)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	const workers = 2
	ch := make(chan struct {
		s   series
		idx int
	}, 4096)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total, nseries := 0, 0
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			app := w.Appender(ctx)
			pending, done := 0, 0
			for item := range ch {
				n, err := write(app, item.s, item.idx, start, end, step)
				// An append error (a duplicate series in the input, say) ends the program: the
				// reader must not block on a worker that stopped.
				must(err)
				pending += n
				done += n
				if pending >= 200000 {
					must(app.Commit())
					app = w.Appender(ctx)
					pending = 0
				}
			}
			must(app.Commit())
			mu.Lock()
			total += done
			mu.Unlock()
		}()
	}
	idx := 0
	for in.Scan() {
		var s series
		must(json.Unmarshal(in.Bytes(), &s))
		ch <- struct {
			s   series
			idx int
		}{s, idx}
		idx++
	}
	must(in.Err())
	nseries = idx
	close(ch)
	wg.Wait()
	id, err := w.Flush(context.Background())
	must(err)
	must(w.Close())
	fmt.Printf("{\"block\": %q, \"series\": %d, \"samples\": %d}\n", id.String(), nseries, total)
}
