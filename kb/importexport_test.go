package kb_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

func mustParseJSON(t *testing.T, doc string) []kb.ImportRow {
	t.Helper()
	rows, err := kb.ParseJSON([]byte(doc))
	must(t, "ParseJSON", err)
	return rows
}

func mustParseCSV(t *testing.T, doc string) []kb.ImportRow {
	t.Helper()
	rows, err := kb.ParseCSV(strings.NewReader(doc))
	must(t, "ParseCSV", err)
	return rows
}

// brokenJSON has rows 2 and 4 broken: row 2 twice.
const brokenJSON = `[
 {"question": "Refund?", "answer": {"text": "Orders > Refund."}, "variants": ["money back"]},
 {"question": "", "answer": {"text": ""}},
 {"question": "Opening hours", "answer": "9 to 5", "enabled": false},
 {"question": "Language?", "answer": "x", "language": "klingon"}
]`

func TestImportAllOrNothing(t *testing.T) {
	f := newFixture(t)
	rep, err := f.svc.Import(t.Context(), "t1", "editor", mustParseJSON(t, brokenJSON), kb.ImportOptions{})
	wantCode(t, "Import with broken rows", err, errs.Invalid)
	want := []kb.RowError{
		{Row: 2, Field: "question", Message: "must not be empty"},
		{Row: 2, Field: "answer.text", Message: "must not be empty"},
		{Row: 4, Field: "language", Message: `must be "" (auto), "en" or "zh"`},
	}
	if d := cmp.Diff(want, rep.Errors); d != "" {
		t.Errorf("report errors (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, errs.DetailsOf(err)["errors"]); d != "" {
		t.Errorf("error details (-want +got):\n%s", d)
	}
	if rep.Rows != 4 || rep.Failed != 2 || rep.Created != 0 {
		t.Errorf("report %+v", rep)
	}
	if msg := errs.MessageOf(err); msg != "import refused, nothing was imported: 2 of 4 rows have errors (row 2: question: must not be empty)" {
		t.Errorf("message = %q", msg)
	}
	if list, _ := f.svc.ListEntries(t.Context(), "t1", kb.EntryFilter{}); len(list) != 0 {
		t.Errorf("a refused import stored %d entries", len(list))
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("a refused import announced %v", got)
	}
}

func TestImportPartial(t *testing.T) {
	f := newFixture(t)
	rep, err := f.svc.Import(t.Context(), "t1", "editor", mustParseJSON(t, brokenJSON), kb.ImportOptions{Partial: true})
	must(t, "Import partial", err)
	if rep.Created != 2 || rep.Updated != 0 || rep.Failed != 2 || len(rep.Errors) != 3 || !rep.Partial {
		t.Errorf("report %+v", rep)
	}
	list, err := f.svc.ListEntries(t.Context(), "t1", kb.EntryFilter{})
	must(t, "ListEntries", err)
	var got []string
	for _, e := range list {
		got = append(got, fmt.Sprintf("%s|%s|%v|%v|%s", e.Question, e.Answer.Text, e.Enabled, e.Variants, e.UpdatedBy))
	}
	want := []string{"Opening hours|9 to 5|false|[]|editor", "Refund?|Orders > Refund.|true|[money back]|editor"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("imported (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements (-want +got):\n%s", d)
	}
}

func TestImportDryRun(t *testing.T) {
	f := newFixture(t)
	existing := f.entry(t, "t1", "Refund?")
	f.pub.take()
	doc := `[{"id": "` + existing.ID + `", "question": "Refund?", "answer": "new"}, {"question": "New one", "answer": "a"}, {"question": ""}]`

	rep, err := f.svc.Import(t.Context(), "t1", "editor", mustParseJSON(t, doc), kb.ImportOptions{DryRun: true})
	must(t, "dry run", err)
	// All or nothing: with a broken row nothing would be imported.
	if rep.Created != 0 || rep.Updated != 0 || rep.Failed != 1 || !rep.DryRun || len(rep.Errors) != 2 {
		t.Errorf("dry run report %+v", rep)
	}
	rep, err = f.svc.Import(t.Context(), "t1", "editor", mustParseJSON(t, doc), kb.ImportOptions{DryRun: true, Partial: true})
	must(t, "partial dry run", err)
	if rep.Created != 1 || rep.Updated != 1 || rep.Failed != 1 {
		t.Errorf("partial dry run report %+v", rep)
	}
	if got, _ := f.svc.GetEntry(t.Context(), "t1", existing.ID); got.Version != 1 || got.Answer.Text != existing.Answer.Text {
		t.Errorf("a dry run changed %+v", got)
	}
	if list, _ := f.svc.ListEntries(t.Context(), "t1", kb.EntryFilter{}); len(list) != 1 {
		t.Errorf("a dry run stored entries: %d", len(list))
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("a dry run announced %v", got)
	}
}

// TestImportUpsert: a row with the id of an entry updates it, a row with an
// unknown id creates the entry under that id, and an id of another tenant
// creates an entry of this tenant without touching the other's.
func TestImportUpsert(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	mine, err := f.svc.CreateEntry(ctx, "t1", "editor", kb.Entry{Question: "Refund?", Answer: kb.Answer{
		Text: "old", Choices: []kb.Choice{{Label: "Person", Handoff: true}}}, Enabled: true})
	must(t, "CreateEntry", err)
	theirs := f.entry(t, "t2", "Their entry")

	doc := `[{"id": "` + mine.ID + `", "question": "Refund?", "answer": {"text": "new"}},
		{"id": "faq-1", "question": "Chosen id", "answer": "a"},
		{"id": "` + theirs.ID + `", "question": "Same id, other tenant", "answer": "b"}]`
	rep, err := f.svc.Import(ctx, "t1", "importer", mustParseJSON(t, doc), kb.ImportOptions{})
	must(t, "Import", err)
	if rep.Created != 2 || rep.Updated != 1 || rep.Failed != 0 {
		t.Errorf("report %+v", rep)
	}
	got, err := f.svc.GetEntry(ctx, "t1", mine.ID)
	must(t, "GetEntry updated", err)
	// JSON carries choices: a row without them clears them.
	if got.Version != 2 || got.Answer.Text != "new" || got.Answer.Choices != nil || got.UpdatedBy != "importer" || !got.CreatedAt.Equal(mine.CreatedAt) {
		t.Errorf("updated entry %+v", got)
	}
	if _, err := f.svc.GetEntry(ctx, "t1", "faq-1"); err != nil {
		t.Errorf("entry with a chosen id: %v", err)
	}
	if got, err := f.svc.GetEntry(ctx, "t1", theirs.ID); err != nil || got.Question != "Same id, other tenant" {
		t.Errorf("t1 entry under t2's id = %+v, %v", got, err)
	}
	if got, err := f.svc.GetEntry(ctx, "t2", theirs.ID); err != nil || got.Question != "Their entry" || got.Version != 1 {
		t.Errorf("t2's entry changed: %+v, %v", got, err)
	}

	// CSV has no choices: a CSV update keeps them.
	withChoices := mine
	withChoices.Answer.Text = "with choices"
	withChoices.Version = got.Version
	withChoices, err = f.svc.UpdateEntry(ctx, "t1", "editor", withChoices)
	must(t, "UpdateEntry", err)
	rep, err = f.svc.Import(ctx, "t1", "importer", mustParseCSV(t, "id,question,answer\n"+mine.ID+",Refund?,csv text\n"), kb.ImportOptions{})
	must(t, "Import CSV", err)
	got, err = f.svc.GetEntry(ctx, "t1", mine.ID)
	must(t, "GetEntry after CSV", err)
	if got.Answer.Text != "csv text" || !cmp.Equal(got.Answer.Choices, withChoices.Answer.Choices) || rep.Updated != 1 {
		t.Errorf("after CSV update: %+v (report %+v)", got.Answer, rep)
	}
}

func TestImportRowChecks(t *testing.T) {
	f := newFixture(t)
	doc := `[{"id": "a", "question": "q1", "answer": "a"},
		{"id": "a", "question": "q2", "answer": "a"},
		{"id": "bad id!", "question": "q3", "answer": "a"},
		{"question": 5, "answer": "a"},
		{"question": "q5", "answer": 7},
		{"question": "q6", "answer": {"text": "t", "choices": "none"}},
		"not an object",
		{"question": "q8", "variants": "one", "answer": "a"}]`
	rep, err := f.svc.Import(t.Context(), "t1", "x", mustParseJSON(t, doc), kb.ImportOptions{Partial: true})
	must(t, "Import", err)
	want := []kb.RowError{
		{Row: 2, Field: "id", Message: "repeats the id of row 1"},
		{Row: 3, Field: "id", Message: "must be 1-64 letters, digits or _-.:"},
		{Row: 4, Field: "question", Message: "must be a string, not number"},
		{Row: 5, Field: "answer", Message: "must be an object {text, choices} or a string"},
		{Row: 6, Field: "answer.choices", Message: "must be an array, not string"},
		{Row: 7, Field: "", Message: "must be an object, not string"},
		{Row: 8, Field: "variants", Message: "must be an array, not string"},
	}
	if d := cmp.Diff(want, rep.Errors); d != "" {
		t.Errorf("row errors (-want +got):\n%s", d)
	}
	if rep.Created != 1 || rep.Failed != 7 {
		t.Errorf("report %+v", rep)
	}
}

func TestParseJSONDocument(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		code      errs.Code
		rows      int
	}{
		{"array", `[{"question":"q","answer":"a"}]`, "", 1},
		{"object with entries", `{"entries":[{"question":"q","answer":"a"},{"question":"r","answer":"b"}]}`, "", 2},
		{"empty array", `[]`, "", 0},
		{"not JSON", `[{"question":`, errs.Invalid, 0},
		{"a string", `"entries"`, errs.Invalid, 0},
		{"entries not an array", `{"entries": 5}`, errs.Invalid, 0},
		{"too many rows", "[" + strings.Repeat(`{},`, kb.MaxImportRows) + `{}]`, errs.TooLarge, 0},
	} {
		rows, err := kb.ParseJSON([]byte(tc.doc))
		if errs.CodeOf(err) != tc.code || len(rows) != tc.rows {
			t.Errorf("%s: %d rows, error %v; want %d rows, code %q", tc.name, len(rows), err, tc.rows, tc.code)
		}
	}
	f := newFixture(t)
	_, err := f.svc.Import(t.Context(), "t1", "x", nil, kb.ImportOptions{})
	wantCode(t, "Import of no rows", err, errs.Invalid)
}

func TestParseCSV(t *testing.T) {
	doc := "\uFEFFQuestion , answer,variants,keywords,enabled,language,category,id\n" +
		`Refund?,"Go to ""Orders"".",money back|cash \| refund|C:\path,refund|退款,yes,en,billing,faq-1` + "\n" +
		`"Two` + "\n" + `lines",a,,,FALSE,,,` + "\n" +
		`'=SUM(A1),'+1,'-x|y,,,,'@cat,` + "\n" +
		`q,a,,,maybe,,,` + "\n" +
		`short,row` + "\n"
	rows := mustParseCSV(t, doc)
	type row struct {
		Row         int
		Entry       kb.Entry
		Problems    []kb.Problem
		KeepChoices bool
	}
	var got []row
	for _, r := range rows {
		got = append(got, row{r.Row, r.Entry, r.Problems, r.KeepChoices})
	}
	want := []row{
		{2, kb.Entry{ID: "faq-1", Question: "Refund?", Answer: kb.Answer{Text: `Go to "Orders".`},
			Variants: []string{"money back", "cash | refund", `C:\path`}, Keywords: []string{"refund", "退款"},
			Category: "billing", Language: kb.LangEnglish, Enabled: true}, nil, true},
		// The header is row 1; a quoted cell over two lines is one row.
		{3, kb.Entry{Question: "Two\nlines", Answer: kb.Answer{Text: "a"}, Variants: []string{}, Keywords: []string{}}, nil, true},
		// The ' that keeps spreadsheets from running formulas is removed.
		{4, kb.Entry{Question: "=SUM(A1)", Answer: kb.Answer{Text: "+1"}, Variants: []string{"-x", "y"}, Keywords: []string{},
			Category: "@cat", Enabled: true}, nil, true},
		{5, kb.Entry{Question: "q", Answer: kb.Answer{Text: "a"}, Variants: []string{}, Keywords: []string{}, Enabled: true},
			[]kb.Problem{{Field: "enabled", Message: "must be true or false"}}, true},
		{6, kb.Entry{Question: "short", Answer: kb.Answer{Text: "row"}, Variants: []string{}, Keywords: []string{}, Enabled: true},
			[]kb.Problem{{Message: "has 2 cells, the header has 8"}}, true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseCSV (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name, doc, msg string
		code           errs.Code
	}{
		{"empty", "", "the CSV is empty: a header row is required", errs.Invalid},
		{"unknown column", "question,answer,colour\n", `CSV header: unknown column "colour" (the columns are id, question, variants, answer, keywords, category, language, enabled)`, errs.Invalid},
		{"repeated column", "question,answer,Answer\n", `CSV header: column "answer" appears twice`, errs.Invalid},
		{"no answer column", "question,variants\n", `CSV header: column "answer" is required`, errs.Invalid},
		{"bad quoting", "question,answer\n\"a\"b,c\n", "malformed CSV at line 2, column", errs.Invalid},
		{"too many rows", "question,answer\n" + strings.Repeat("q,a\n", kb.MaxImportRows+1), "more than 20000 rows", errs.TooLarge},
	} {
		_, err := kb.ParseCSV(strings.NewReader(tc.doc))
		if errs.CodeOf(err) != tc.code || !strings.HasPrefix(errs.MessageOf(err), tc.msg) {
			t.Errorf("%s: error %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	rows = mustParseCSV(t, "question,answer\n")
	if len(rows) != 0 {
		t.Errorf("header only: %d rows", len(rows))
	}
}

// trickyEntries exercise every escape of both formats.
func trickyEntries() []kb.Entry {
	return []kb.Entry{
		{Question: "Refund?", Variants: []string{"money back", "cash | refund", `back\slash`, `ends with \`, `\|`}, Answer: kb.Answer{
			Text: "Go to \"Orders\",\nthen Refund.", Choices: []kb.Choice{{Label: "Person", Handoff: true, GroupID: "billing"}, {Label: "Hours", Text: "9-5"}}},
			Keywords: []string{"refund", "退款"}, Category: "billing", Language: kb.LangEnglish, Enabled: true},
		{Question: "=HYPERLINK(\"http://evil\")", Variants: []string{"+1 555", "-minus", "@at", "'quoted"}, Answer: kb.Answer{Text: "'=already quoted"},
			Keywords: []string{}, Category: "-cat", Language: kb.LangAuto, Enabled: false},
		{Question: "如何退款", Variants: []string{"退钱", "怎么退款"}, Answer: kb.Answer{Text: "请在订单页面申请退款。"},
			Keywords: []string{"退款"}, Language: kb.LangChinese, Enabled: true},
	}
}

// content strips what an export/import round trip does not keep the same
// (the tenant, versions, times and the editor).
func content(es []kb.Entry) []kb.Entry {
	out := make([]kb.Entry, len(es))
	for i, e := range es {
		e.TenantID, e.Version, e.CreatedAt, e.UpdatedAt, e.UpdatedBy = "", 0, start, start, ""
		out[i] = e
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, format := range []kb.Format{kb.FormatJSON, kb.FormatCSV} {
		t.Run(string(format), func(t *testing.T) {
			f := newFixture(t)
			ctx := t.Context()
			for _, e := range trickyEntries() {
				if _, err := f.svc.CreateEntry(ctx, "t1", "editor", e); err != nil {
					t.Fatal(err)
				}
			}
			export := func(tenant string) ([]kb.Entry, []byte) {
				t.Helper()
				es, err := f.svc.Export(ctx, tenant)
				must(t, "Export", err)
				var b bytes.Buffer
				if format == kb.FormatJSON {
					must(t, "WriteJSON", kb.WriteJSON(&b, es))
				} else {
					must(t, "WriteCSV", kb.WriteCSV(&b, es))
				}
				return es, b.Bytes()
			}
			parse := func(b []byte) []kb.ImportRow {
				t.Helper()
				if format == kb.FormatJSON {
					return mustParseJSON(t, string(b))
				}
				rows, err := kb.ParseCSV(bytes.NewReader(b))
				must(t, "ParseCSV", err)
				return rows
			}
			orig, file := export("t1")

			// Into another tenant: the same entries under the same ids.
			rep, err := f.svc.Import(ctx, "t2", "importer", parse(file), kb.ImportOptions{})
			must(t, "Import into t2", err)
			if rep.Created != 3 || rep.Failed != 0 {
				t.Fatalf("report %+v\nfile:\n%s", rep, file)
			}
			copied, file2 := export("t2")
			want := content(orig)
			if format == kb.FormatCSV {
				for i := range want {
					want[i].Answer.Choices = nil // CSV has none
				}
			}
			if d := cmp.Diff(want, content(copied)); d != "" {
				t.Errorf("entries after the round trip (-want +got):\n%s\nfile:\n%s", d, file)
			}
			if format == kb.FormatJSON && !bytes.Equal(stripMeta(t, file), stripMeta(t, file2)) {
				t.Errorf("second export differs:\n%s\n%s", file, file2)
			}

			// Back into the same tenant: every row updates its entry and
			// nothing changes but the version (CSV keeps the choices).
			rep, err = f.svc.Import(ctx, "t1", "importer", parse(file), kb.ImportOptions{})
			must(t, "Import into t1", err)
			if rep.Updated != 3 || rep.Created != 0 {
				t.Errorf("re-import report %+v", rep)
			}
			again, _ := export("t1")
			if d := cmp.Diff(content(orig), content(again)); d != "" {
				t.Errorf("entries after re-import (-want +got):\n%s", d)
			}
		})
	}
}

// stripMeta drops the fields of an exported JSON file that differ between
// tenants and times.
func stripMeta(t *testing.T, b []byte) []byte {
	t.Helper()
	var es []map[string]any
	must(t, "decode export", json.Unmarshal(b, &es))
	for _, e := range es {
		delete(e, "created_at")
		delete(e, "updated_at")
		delete(e, "updated_by")
		delete(e, "version")
	}
	out, _ := json.Marshal(es)
	return out
}

func TestWriteCSVGuardsFormulas(t *testing.T) {
	var b bytes.Buffer
	must(t, "WriteCSV", kb.WriteCSV(&b, []kb.Entry{{ID: "e1", Question: "=1+1", Answer: kb.Answer{Text: "@SUM(1)"},
		Variants: []string{"-2", "ok"}, Keywords: []string{}, Enabled: true}}))
	want := "id,question,variants,answer,keywords,category,language,enabled\ne1,'=1+1,'-2|ok,'@SUM(1),,,,true\n"
	if b.String() != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("question,answer\nq,a\n")
	f.Add("question,answer,variants\n\"a\nb\",c,x\\|y|z\\\\\n")
	f.Add("id,question,answer,enabled\n'=x,'+q,a,no\n")
	f.Fuzz(func(t *testing.T, doc string) {
		rows, err := kb.ParseCSV(strings.NewReader(doc))
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		for i, r := range rows {
			if r.Row < i+2 {
				t.Fatalf("row %d numbered %d", i, r.Row)
			}
			_ = r.Entry.Normalize().Validate()
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`[{"question":"q","answer":"a"}]`)
	f.Add(`{"entries":[{"question":"q","answer":{"text":"a","choices":[{"label":"x","handoff":true}]}}]}`)
	f.Add(`[1, "x", null, {"variants": 5}]`)
	f.Fuzz(func(t *testing.T, doc string) {
		rows, err := kb.ParseJSON([]byte(doc))
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		for i, r := range rows {
			if r.Row != i+1 {
				t.Fatalf("row %d numbered %d", i, r.Row)
			}
			_ = r.Entry.Normalize().Validate()
		}
	})
}
