// Command nabtune runs the Ensemble detector with parameter variations on
// a NAB-layout corpus and prints the NAB scores of each, to choose the one
// configuration used for every series.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"

	"github.com/novacron/novacron/internal/modelscli"
	"github.com/novacron/novacron/models"
)

func main() {
	data := flag.String("data", "../shared/datasets/nab-dev", "NAB data directory")
	set := flag.String("set", "", "comma-separated overrides name=value applied to the defaults")
	sweep := flag.String("sweep", "", "name=v1,v2,... to sweep one parameter")
	flag.Parse()
	labels, err := modelscli.ReadNABLabels(*data + "/labels.json")
	if err != nil {
		log.Fatal(err)
	}
	corpus, err := modelscli.LoadNABCorpus(*data, labels)
	if err != nil {
		log.Fatal(err)
	}
	times := map[string][]int64{}
	for rel, rows := range corpus {
		ts := make([]int64, len(rows))
		for i, r := range rows {
			ts[i] = r.T
		}
		times[rel] = ts
	}
	base := models.NewDefaultEnsembleConfig()
	if *set != "" {
		for _, kv := range strings.Split(*set, ";") {
			apply(&base, kv)
		}
	}
	variants := []string{""}
	if *sweep != "" {
		name, vals, _ := strings.Cut(*sweep, "=")
		variants = nil
		for _, v := range strings.Split(vals, ",") {
			variants = append(variants, name+"="+v)
		}
	}
	for _, v := range variants {
		cfg := base
		if v != "" {
			apply(&cfg, v)
		}
		scores := map[string][]float64{}
		comps := map[string][]models.Component{}
		for rel, rows := range corpus {
			d := models.NewEnsemble(cfg)
			sc := make([]float64, len(rows))
			cs := make([]models.Component, len(rows))
			for i, r := range rows {
				res := d.Observe(r.T, r.V)
				sc[i], cs[i] = res.Score, res.Component
			}
			scores[rel], comps[rel] = sc, cs
		}
		res, err := modelscli.ScoreNAB(labels, times, scores)
		if err != nil {
			log.Fatal(err)
		}
		p := res.Profiles
		fmt.Printf("%-28s std %6.2f lowFP %6.2f lowFN %6.2f thr %.4f hit %d miss %d fp %d\n", v,
			p["standard"].Normalized, p["reward_low_FP"].Normalized, p["reward_low_FN"].Normalized,
			p["standard"].Threshold, p["standard"].WindowsDetected, p["standard"].WindowsMissed, p["standard"].FP)
		if detail := os.Getenv("DETAIL"); detail != "" {
			printAlarms(corpus, labels, scores, comps, detail, p["standard"].Threshold)
		}
		if os.Getenv("PERFILE") != "" {
			for _, f := range p["standard"].PerFile {
				fmt.Printf("   %-60s raw %6.2f fp %3d hit %d miss %d\n", f.File, f.Raw, f.FP, f.WindowsDetected, f.WindowsMissed)
			}
		}
	}
}

func apply(c *models.EnsembleConfig, kv string) {
	name, val, _ := strings.Cut(kv, "=")
	var f float64
	fmt.Sscan(val, &f)
	switch name {
	case "fast":
		c.FastAlpha = f
	case "scale":
		c.ScaleAlpha = f
	case "prof":
		c.ProfileAlpha = f
	case "win":
		c.Window = int(f)
	case "lalpha":
		c.LikelihoodAlpha = f
	case "nov":
		c.NoveltyWeight = f
	case "novm":
		c.NoveltyMargin = f
	case "k":
		c.ShiftK = f
	case "h":
		c.ShiftH = f
	case "warm":
		c.Warmup = int(f)
	case "restlvl":
		c.RestLevel = f
	case "rest":
		c.Rest = int(f)
	case "bins":
		c.ContextBins = int(f)
	case "lfast":
		c.LevelFast = f
	case "lslow":
		c.LevelSlow = f
	case "lz":
		c.LevelZ = f
	case "dslots":
		c.DaySlots = int(f)
	case "dmargin":
		c.DayMargin = f
	case "ddays":
		c.DayMinDays = f
	case "gap":
		c.EventGap = f
	case "cspread":
		c.ContextSpread = int(f)
	case "emp":
		c.Empirical = f != 0
	default:
		log.Fatalf("unknown parameter %q", name)
	}
}

// printAlarms lists, for each file whose path contains sub ("all" for
// every file), its labelled windows (row ranges) and the rows scoring at or
// above thr with the component that raised them.
func printAlarms(corpus map[string][]modelscli.Row, labels map[string][][2]string, scores map[string][]float64,
	comps map[string][]models.Component, sub string, thr float64) {
	rels := make([]string, 0, len(corpus))
	for rel := range corpus {
		if sub == "all" || strings.Contains(rel, sub) {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels)
	for _, rel := range rels {
		rows := corpus[rel]
		idx := map[int64]int{}
		for i := len(rows) - 1; i >= 0; i-- {
			idx[rows[i].T] = i
		}
		var ws []string
		for _, w := range labels[rel] {
			a, _ := modelscli.ParseTimestamp(w[0])
			b, _ := modelscli.ParseTimestamp(w[1])
			ws = append(ws, fmt.Sprintf("%d-%d", idx[a], idx[b]))
		}
		fmt.Printf("%s n=%d windows %v\n  alarms:", rel, len(rows), ws)
		for i, s := range scores[rel] {
			if s >= thr {
				fmt.Printf(" %d(%.2f,%s)", i, s, comps[rel][i])
			}
		}
		fmt.Println()
	}
}
