package match

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// A training text's novelty must leave the text itself out, as a message
// is not among the texts either; otherwise every training text would look
// known and the shape features could not learn anything about novelty.
func TestShapeNoveltyLeavesTextOut(t *testing.T) {
	exs := []example{
		{0, "打开微信"}, {0, "打开地图"}, {0, "打开相机"},
		{1, "霸王别姬"}, {1, "打开地图吧"},
	}
	m := trainModel(2, exs, 1)
	shape := func(length, novelty byte) uint64 {
		return hashString(hashKind(kindShape), string([]byte{'x', length, novelty}))
	}
	for _, tc := range []struct {
		text string
		self int32
		want uint64
	}{
		// As a training text: none of its pairs occurs in another text.
		{"霸王别姬", 1, shape('1', '4')},
		// The same text as a message: the KB holds it, nothing is new.
		{"霸王别姬", 0, shape('1', '0')},
		// A message sharing one pair (打开) of three.
		{"打开电视", 0, shape('1', '2')},
		// A message sharing two pairs (打开, 开地) of four.
		{"打开地球仪", 0, shape('2', '2')},
		// Nothing known at all.
		{"今天天气", 0, shape('1', '4')},
	} {
		got := m.shapeOf(analyze(tc.text), tc.self)
		if got[3] != tc.want {
			t.Errorf("shapeOf(%q, %d): length×novelty feature differs from the expected bucket", tc.text, tc.self)
		}
		if got[0] != hashString(hashKind(kindShape), "bias") {
			t.Errorf("shapeOf(%q): no bias feature", tc.text)
		}
		// A message's shapes come from its vector without lookups; they
		// must be the ones shapeOf gives it.
		if tc.self == 0 {
			a := analyze(tc.text)
			ids := m.messageShapes(a, m.vectorOf(a))
			for i, h := range got {
				want := int32(-1)
				if id, ok := m.vocab[h]; ok {
					want = id
				}
				if ids[i] != want {
					t.Errorf("messageShapes(%q)[%d] = %d, shapeOf gives %d", tc.text, i, ids[i], want)
				}
			}
		}
	}
}

// The shape features let the classifier learn what kind of message an
// entry receives: here one entry is asked with bare titles nobody else
// wrote, the other with commands. The shapes must move a new bare title
// toward the titles and a command toward the commands, by more than a
// rounding error; how far is learnt, which is what this checks.
func TestShapesLearnKindsOfMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Title characters and command objects come from disjoint pools.
	titleChars := []rune("霸王别姬江山如画红楼梦西游记水浒传三国演义天龙八部射雕英雄笑傲湖鹿鼎神")
	objects := []string{"微信", "地图", "相机", "闹钟", "日历", "音乐", "短信", "电话", "浏览器", "设置"}
	var exs []example
	for i := 0; i < 40; i++ {
		title := make([]rune, 3+rng.IntN(3))
		for j := range title {
			title[j] = titleChars[rng.IntN(len(titleChars))]
		}
		exs = append(exs, example{0, string(title)})
	}
	for i := 0; i < 40; i++ {
		verb := []string{"打开", "启动", "帮我打开", "进入"}[i%4]
		exs = append(exs, example{1, verb + objects[i%len(objects)]})
	}
	m := trainModel(2, exs, 1)
	if !m.shapes {
		t.Fatal("a two-entry KB dropped its shape features")
	}
	s := newScratch(2, len(exs))
	// margin returns the titles' score minus the commands', on words
	// alone and with the shapes.
	margin := func(text string) (words, shaped float32) {
		a := analyze(text)
		v := m.vectorOf(a)
		for i := range 2 {
			s.next()
			if i == 0 {
				m.classScores(v, s)
			} else {
				m.classify(a, v, s)
			}
			var sc [2]float32
			for c := range sc {
				if s.clsMark[c] == s.gen {
					sc[c] = s.clsScore[c]
				}
			}
			if i == 0 {
				words = sc[0] - sc[1]
			} else {
				shaped = sc[0] - sc[1]
			}
		}
		return words, shaped
	}
	// A bare title of unknown pairs with one character of a command.
	if w, sh := margin("地坛公园"); sh < w+0.3 {
		t.Errorf("bare title: titles' margin %.2f on words, %.2f with shapes; want the shapes to add 0.3 or more", w, sh)
	}
	// A command the KB knows word for word.
	if w, sh := margin("打开微信"); sh > w-0.1 {
		t.Errorf("command: titles' margin %.2f on words, %.2f with shapes; want the shapes to favour the commands", w, sh)
	}
}

// rankData draws held-out queries whose right candidate follows a softmax
// over the candidates' features with weights w.
func rankData(rng *rand.Rand, w [rkN]float64, n int) []rankQuery {
	var qs []rankQuery
	for range n {
		cands := make([]candFeat, 8)
		for i := range cands {
			cands[i].class = int32(i)
			for j := range cands[i].rk {
				cands[i].rk[j] = rng.Float64()
			}
		}
		softmaxRank(w, cands)
		u, truth := rng.Float64(), int32(len(cands)-1)
		for i, c := range cands {
			if u -= c.prob; u <= 0 {
				truth = int32(i)
				break
			}
		}
		qs = append(qs, rankQuery{cands: cands, truth: truth})
	}
	return qs
}

func TestFitRankerRecoversWeights(t *testing.T) {
	want := [rkN]float64{3, 1, 0.5}
	got := fitRanker(rankData(rand.New(rand.NewPCG(3, 4)), want, 20000))
	for j := range want {
		if math.Abs(got[j]-want[j]) > 0.25 {
			t.Errorf("weights %.2f, want about %.2f", got, want)
			break
		}
	}
}

// A feature that speaks against the right candidate on held-out data gets
// weight zero, never a negative weight.
func TestFitRankerNonNegative(t *testing.T) {
	got := fitRanker(rankData(rand.New(rand.NewPCG(5, 6)), [rkN]float64{-3, 4, 0}, 5000))
	if got[rkClassifier] != 0 {
		t.Errorf("classifier weight %.3f, want 0", got[rkClassifier])
	}
	if got[rkCosine] < 2 {
		t.Errorf("cosine weight %.3f, want it to carry the ranking", got[rkCosine])
	}
	for j, w := range got {
		if w < 0 {
			t.Errorf("weight %d = %.3f < 0", j, w)
		}
	}
}

func TestFitRankerSmallKeepsDefault(t *testing.T) {
	if got := fitRanker(rankData(rand.New(rand.NewPCG(7, 8)), [rkN]float64{0, 0, 5}, minCalibration-1)); got != defaultRanker {
		t.Errorf("too few queries fitted %.2f, want the default %.2f", got, defaultRanker)
	}
}

// A small KB is calibrated over several folds, each variant held out at
// most once, so the ranker and calibrator see many more in-scope queries
// than one fold gives.
func TestCalibrationFolds(t *testing.T) {
	var entries []entryTexts
	variants := 0
	for i := 0; i < 12; i++ {
		d := Doc{ID: fmt.Sprint(i), Question: fmt.Sprintf("question %d about topic%d", i, i)}
		for j := 0; j < 16; j++ {
			d.Variants = append(d.Variants, fmt.Sprintf("variant %d of topic%d word%d", j, i, j*7+i))
		}
		variants += len(d.Variants)
		entries = append(entries, newEntryTexts(d))
	}
	qs, err := calibrationQueries(entries, []string{"unrelated small talk"}, 9)
	if err != nil {
		t.Fatal(err)
	}
	inScope := 0
	for _, q := range qs {
		if q.truth < 0 {
			continue
		}
		inScope++
	}
	// Evidence does not name its text, so check the count: every fold
	// holds out about 1/calFolds of the variants of the entries it keeps.
	if inScope > variants {
		t.Errorf("%d in-scope queries from %d variants: a variant was held out twice", inScope, variants)
	}
	if min := variants / 2; inScope < min {
		t.Errorf("%d in-scope queries from %d variants, want at least %d over the folds", inScope, variants, min)
	}
	again, err := calibrationQueries(entries, []string{"unrelated small talk"}, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(qs) {
		t.Errorf("calibration not deterministic: %d then %d queries", len(qs), len(again))
	}
}
