// Command parse measures how long github.com/google/pprof/profile.Parse
// takes on profile files, as a reference point for cprof's own reader.
//
// Usage:
//
//	parse [-n N] FILE...
//
// Each file is read into memory once and then parsed N times (default 5).
// One JSON object per file is printed on stdout:
//
//	{"file":..., "best_s":..., "median_s":..., "samples":..., "locations":..., "peak_rss_kb":...}
//
// peak_rss_kb is the process's maximum resident set size so far (getrusage
// ru_maxrss), so it is monotonic across files; pass a single file per run
// for a per-file figure.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/google/pprof/profile"
)

type result struct {
	File      string  `json:"file"`
	BestS     float64 `json:"best_s"`
	MedianS   float64 `json:"median_s"`
	Samples   int     `json:"samples"`
	Locations int     `json:"locations"`
	PeakRSSKB int64   `json:"peak_rss_kb"`
}

func peakRSSKB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	kb := int64(ru.Maxrss)
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		kb /= 1024 // reported in bytes there, kilobytes on Linux/BSD
	}
	return kb
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func bench(path string, n int) (*result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	times := make([]float64, 0, n)
	var p *profile.Profile
	for i := 0; i < n; i++ {
		start := time.Now()
		p, err = profile.Parse(bytes.NewReader(data))
		elapsed := time.Since(start).Seconds()
		if err != nil {
			return nil, err
		}
		times = append(times, elapsed)
	}
	best := times[0]
	for _, t := range times[1:] {
		if t < best {
			best = t
		}
	}
	return &result{
		File:      path,
		BestS:     best,
		MedianS:   median(times),
		Samples:   len(p.Sample),
		Locations: len(p.Location),
		PeakRSSKB: peakRSSKB(),
	}, nil
}

func main() {
	n := flag.Int("n", 5, "number of parse repetitions per file")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-n N] FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	status := 0
	for _, path := range flag.Args() {
		r, err := bench(path, *n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "parse: %s: %v\n", path, err)
			status = 1
			continue
		}
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "parse:", err)
			os.Exit(1)
		}
	}
	os.Exit(status)
}
