// This file holds `switchboard kb`: operator tools for the knowledge-base
// matcher. `kb eval` measures it on labelled query sets, `kb bench` on a
// large generated KB, so a change to the matcher is judged by numbers.

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchboard-acd/switchboard/kb/kbeval"
)

func kbCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: switchboard kb eval|bench [flags]")
	}
	switch args[0] {
	case "eval":
		return kbEval(args[1:], stdout, stderr)
	case "bench":
		return kbBench(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown kb command %q (eval, bench)", args[0])
}

func readExamples(path string) ([]kbeval.Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exs, err := kbeval.ReadTSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exs, nil
}

func kbEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard kb eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	trainPath := fs.String("train", "", "training file (text<TAB>label lines): one entry per label, its lines as variants")
	testPath := fs.String("test", "", "test file (same format); labels starting with oos should be declined")
	holdout := fs.Float64("holdout", 0, "instead of -test, hold out this share of each label of -train as the test set")
	seed := fs.Uint64("seed", 1, "seed of the -holdout split and of the matcher's calibration split")
	oosLabels := fs.String("oos-labels", "", "comma-separated labels that are out of scope besides oos* (smp2017: chat)")
	noNeg := fs.Bool("no-negatives", false, "leave out-of-scope training lines out instead of giving them to the matcher as negatives")
	answer := fs.Float64("answer", 0, "answer threshold (default kb.DefaultSettings)")
	suggest := fs.Float64("suggest", 0, "suggest threshold (default kb.DefaultSettings)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *trainPath == "" || (*testPath == "") == (*holdout == 0) {
		return fmt.Errorf("kb eval: need -train and exactly one of -test or -holdout")
	}
	if *holdout < 0 || *holdout >= 1 {
		return fmt.Errorf("kb eval: -holdout must be in (0,1)")
	}
	train, err := readExamples(*trainPath)
	if err != nil {
		return err
	}
	var test []kbeval.Example
	if *testPath != "" {
		if test, err = readExamples(*testPath); err != nil {
			return err
		}
	} else {
		train, test = kbeval.Split(train, *holdout, *seed)
	}
	cfg := kbeval.Config{AnswerThreshold: *answer, SuggestThreshold: *suggest, NoNegatives: *noNeg, Seed: *seed}
	for _, l := range strings.Split(*oosLabels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			cfg.OOSLabels = append(cfg.OOSLabels, l)
		}
	}
	r, err := kbeval.Run(train, test, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(stdout)
}

func kbBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard kb bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("datasets", "", "datasets directory (default $SWITCHBOARD_DATASETS or ../shared/datasets next to the repository)")
	n := fs.Int("entries", 10000, "entries in the generated KB")
	rounds := fs.Int("rounds", 3, "passes over the test queries")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := kbeval.DatasetsDir()
		if err != nil {
			return err
		}
		*dir = d
	}
	r, err := kbeval.Bench(*dir, *n, *rounds)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(stdout)
}
