package modelscli

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func msToNAB(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }

func formatF(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

func FuzzReadSeriesCSV(f *testing.F) {
	f.Add("timestamp,value\n2024-01-01 00:00:00,1.5\n")
	f.Add("value,timestamp\n3,2024-01-01T00:00:00Z\n,2024-01-01 00:00\n")
	f.Add("timestamp,value\n1700000000,NaN\n")
	f.Add("timestamp,value\n\"2024-01-01 00:00:00\",\"1e308\"\nbad")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 1<<16 {
			return
		}
		rows, err := ReadSeriesCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		scores := make([]float64, len(rows))
		if err := WriteScoresCSV(&buf, rows, scores); err != nil {
			t.Fatal(err)
		}
		back, err := ReadSeriesCSV(&buf)
		if err != nil {
			t.Fatalf("re-reading written rows: %v", err)
		}
		if len(back) != len(rows) {
			t.Fatalf("round trip: %d rows, want %d", len(back), len(rows))
		}
		for i := range rows {
			if back[i].T != rows[i].T || !(back[i].V == rows[i].V || math.IsNaN(back[i].V) && math.IsNaN(rows[i].V)) {
				t.Fatalf("row %d: %+v became %+v", i, rows[i], back[i])
			}
		}
	})
}

func FuzzReadM4CSV(f *testing.F) {
	f.Add("\"V1\",\"V2\",\"V3\"\n\"H1\",\"1\",\"2\"\n\"H2\",\"3\",\"\"\n")
	f.Add("id,F1,F2\nH1,1,2\nH1,3,4\n")
	f.Add("H1,1,,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 1<<16 {
			return
		}
		series, err := ReadM4CSV(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range series {
			if seen[s.ID] {
				t.Fatalf("duplicate id %s accepted", s.ID)
			}
			seen[s.ID] = true
			for _, v := range s.Values {
				if math.IsNaN(v) {
					t.Fatalf("gap accepted in %s", s.ID)
				}
			}
		}
	})
}
