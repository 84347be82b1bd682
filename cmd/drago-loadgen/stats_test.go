//go:build linux

package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value, p50", ms(7), 50, 7 * time.Millisecond},
		{"one value, p99", ms(7), 99, 7 * time.Millisecond},
		{"two values, p50 is the lower", ms(1, 2), 50, time.Millisecond},
		{"two values, p51 is the upper", ms(1, 2), 51, 2 * time.Millisecond},
		{"1..100, p50", ms(hundred...), 50, 50 * time.Millisecond},
		{"1..100, p90", ms(hundred...), 90, 90 * time.Millisecond},
		{"1..100, p99", ms(hundred...), 99, 99 * time.Millisecond},
		{"1..100, max", ms(hundred...), 100, 100 * time.Millisecond},
		{"ten values, p99 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"ten values, p90", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sample, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sample, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	got := summarize(in)
	want := Dist{N: 5, P50: 3, P90: 5, P99: 5, Max: 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{5, 1, 4, 2, 3}, in); diff != "" {
		t.Errorf("summarize changed its input (-want +got):\n%s", diff)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ms(250 * time.Microsecond), "0.25ms"},
		{ms(1234567 * time.Nanosecond), "1.2ms"},
		{ms(12 * time.Second), "12.0s"},
		{byteSize(512), "512 B"},
		{byteSize(1536), "1.5 KiB"},
		{byteSize(3 << 20), "3.0 MiB"},
		{byteSize(1.5 * (1 << 30)), "1.50 GiB"},
		{Dist{}.String(), "no samples"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
