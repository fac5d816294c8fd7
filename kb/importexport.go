// This file holds bulk import and export of FAQ entries, in JSON and CSV.
//
// JSON is an array of entries as the API shows them (GET /api/v1/kb/entries
// items); an object {"entries": [...]} is accepted too. Only id, question,
// variants, answer, keywords, category, language and enabled are read;
// version and times are the server's. "answer" is an object {text,
// choices} or, for hand-written files, a plain string. A missing "enabled"
// means true. Rows are numbered from 1 in array order.
//
// CSV has a header row naming its columns, in any order: question and
// answer are required; id, variants, keywords, category, language and
// enabled are optional. Multi-valued cells (variants, keywords) separate
// their values with "|"; a literal "|" is written "\|" and a literal
// backslash before "|" or at the end "\\". enabled is true/false (also
// yes/no, 1/0; empty means true). Rows are numbered like a spreadsheet: the
// header is row 1. CSV has no choices: a CSV row that updates an existing
// entry keeps the entry's choices. A cell that would start with = + - @ or
// ' is written with a leading ' so spreadsheets do not run it as a formula;
// the import removes that one '.
//
// An import row with an id updates the tenant's entry with that id, or
// creates it with that id when there is none; a row without id creates a
// new entry. Export writes exactly what import reads back.

package kb

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Format is an import or export file format.
type Format string

// The formats.
const (
	FormatJSON Format = "json"
	FormatCSV  Format = "csv"
)

// CSVColumns are the columns export writes, in order; import knows the
// same names.
var CSVColumns = []string{"id", "question", "variants", "answer", "keywords", "category", "language", "enabled"}

// ImportRow is one entry read from an import file.
type ImportRow struct {
	// Row is the row's number in the file (see the package comment).
	Row   int
	Entry Entry
	// Problems are what was wrong with the row's cells before validation
	// (a cell of the wrong type, an unknown boolean).
	Problems []Problem
	// KeepChoices is set for rows of a format without choices (CSV): an
	// update keeps the stored entry's choices.
	KeepChoices bool
}

// ImportOptions say how Import treats broken rows.
type ImportOptions struct {
	// Partial imports every valid row and reports the broken ones; by
	// default one broken row refuses the whole import.
	Partial bool
	// DryRun validates and counts, and writes nothing.
	DryRun bool
}

// RowError is one problem of one import row.
type RowError struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ImportReport is what an import did, or would do in a dry run.
type ImportReport struct {
	// Rows is the number of rows read.
	Rows int `json:"rows"`
	// Created and Updated count the entries written (or that would be).
	Created int `json:"created"`
	Updated int `json:"updated"`
	// Failed counts the rows with errors, which were not imported.
	Failed  int        `json:"failed"`
	DryRun  bool       `json:"dry_run"`
	Partial bool       `json:"partial"`
	Errors  []RowError `json:"errors"`
}

// ParseJSON reads a JSON import. A document that is not an array (or
// {"entries": [...]}) is errs.Invalid; more than MaxImportRows rows is
// errs.TooLarge. A row of the wrong shape is read with Problems.
func ParseJSON(data []byte) ([]ImportRow, error) {
	const op = "kb.ParseJSON"
	data = bytes.TrimSpace(data)
	var raw []json.RawMessage
	if len(data) > 0 && data[0] == '{' {
		var doc struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, errs.E(op, errs.Invalid, "malformed JSON: %v", err)
		}
		raw = doc.Entries
	} else if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errs.E(op, errs.Invalid, "malformed JSON: an import is an array of entries: %v", err)
	}
	if len(raw) > MaxImportRows {
		return nil, errs.E(op, errs.TooLarge, "more than %d rows", MaxImportRows)
	}
	rows := make([]ImportRow, len(raw))
	for i, r := range raw {
		rows[i] = parseJSONRow(i+1, r)
	}
	return rows, nil
}

func parseJSONRow(n int, raw json.RawMessage) ImportRow {
	row := ImportRow{Row: n, Entry: Entry{Enabled: true}}
	// Field by field, so that every field of the wrong type is reported and
	// the others are still read and validated.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		row.Problems = append(row.Problems, jsonProblem(err))
		return row
	}
	field := func(name string, dst any) {
		v, ok := obj[name]
		if !ok || string(v) == "null" {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			p := jsonProblem(err)
			p.Field = strings.TrimSuffix(name+"."+p.Field, ".")
			row.Problems = append(row.Problems, p)
		}
	}
	e := &row.Entry
	field("id", &e.ID)
	field("question", &e.Question)
	field("variants", &e.Variants)
	field("keywords", &e.Keywords)
	field("category", &e.Category)
	field("language", &e.Language)
	field("enabled", &e.Enabled)
	if v, ok := obj["answer"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &e.Answer.Text); err != nil {
			e.Answer = Answer{}
			if len(bytes.TrimSpace(v)) > 0 && bytes.TrimSpace(v)[0] == '{' {
				field("answer", &e.Answer)
			} else {
				row.Problems = append(row.Problems, Problem{Field: "answer", Message: "must be an object {text, choices} or a string"})
			}
		}
	}
	return row
}

// jsonProblem describes a JSON decoding error of one row.
func jsonProblem(err error) Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return Problem{Field: te.Field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value)}
	}
	return Problem{Message: "not an entry object: " + err.Error()}
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// ParseCSV reads a CSV import. A bad header or a CSV syntax error is
// errs.Invalid (nothing after it can be trusted); more than MaxImportRows
// rows is errs.TooLarge. A row with a bad cell is read with Problems.
func ParseCSV(r io.Reader) ([]ImportRow, error) {
	const op = "kb.ParseCSV"
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // rows of the wrong width are reported per row
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errs.E(op, errs.Invalid, "the CSV is empty: a header row is required")
	}
	if err != nil {
		return nil, csvError(op, err)
	}
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF") // the byte-order mark spreadsheets write
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(CSVColumns, h) {
			return nil, errs.E(op, errs.Invalid, "CSV header: unknown column %q (the columns are %s)", h, strings.Join(CSVColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, errs.E(op, errs.Invalid, "CSV header: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, req := range []string{"question", "answer"} {
		if _, ok := col[req]; !ok {
			return nil, errs.E(op, errs.Invalid, "CSV header: column %q is required", req)
		}
	}
	var rows []ImportRow
	for n := 2; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(op, err)
		}
		if len(rows) == MaxImportRows {
			return nil, errs.E(op, errs.TooLarge, "more than %d rows", MaxImportRows)
		}
		rows = append(rows, parseCSVRow(n, rec, col, len(header)))
	}
	return rows, nil
}

func csvError(op string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return errs.E(op, errs.Invalid, "malformed CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return errs.E(op, errs.Invalid, "read CSV: %v", err)
}

func parseCSVRow(n int, rec []string, col map[string]int, width int) ImportRow {
	row := ImportRow{Row: n, KeepChoices: true}
	if len(rec) != width {
		row.Problems = append(row.Problems, Problem{Message: fmt.Sprintf("has %d cells, the header has %d", len(rec), width)})
	}
	cell := func(name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return unguard(rec[i])
	}
	row.Entry = Entry{
		ID:       strings.TrimSpace(cell("id")),
		Question: cell("question"),
		Variants: splitMulti(cell("variants")),
		Answer:   Answer{Text: cell("answer")},
		Keywords: splitMulti(cell("keywords")),
		Category: cell("category"),
		Language: Language(strings.TrimSpace(cell("language"))),
		Enabled:  true,
	}
	switch strings.ToLower(strings.TrimSpace(cell("enabled"))) {
	case "", "true", "yes", "1":
	case "false", "no", "0":
		row.Entry.Enabled = false
	default:
		row.Problems = append(row.Problems, Problem{Field: "enabled", Message: "must be true or false"})
	}
	return row
}

// splitMulti splits a multi-valued cell on unescaped "|" and unescapes
// "\|" and "\\"; any other backslash is kept as written.
func splitMulti(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{}
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && (s[i+1] == '|' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == '|':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// joinMulti is the inverse of splitMulti.
func joinMulti(items []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `|`, `\|`)
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = esc.Replace(it)
	}
	return strings.Join(parts, "|")
}

// formulaStart reports whether a spreadsheet would evaluate a cell that
// starts with c.
func formulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// guard prefixes a cell that a spreadsheet would run as a formula (or that
// starts with the prefix itself) with "'"; unguard removes it.
func guard(s string) string {
	if s != "" && (formulaStart(s[0]) || s[0] == '\'') {
		return "'" + s
	}
	return s
}

func unguard(s string) string {
	if len(s) >= 2 && s[0] == '\'' && (formulaStart(s[1]) || s[1] == '\'') {
		return s[1:]
	}
	return s
}

// Import validates every row, then writes the valid ones in one
// transaction: all rows or none by default (errs.Invalid listing every
// broken row in details "errors" when one is broken), or every valid row
// with opts.Partial. A dry run validates, counts what would be created and
// updated, and writes nothing; its report lists the broken rows without
// failing. Repeated ids in one import are broken rows.
func (s *Service) Import(ctx context.Context, tenantID, actor string, rows []ImportRow, opts ImportOptions) (ImportReport, error) {
	const op = "kb.Import"
	if len(rows) == 0 {
		return ImportReport{}, errs.E(op, errs.Invalid, "the import has no rows")
	}
	if len(rows) > MaxImportRows {
		return ImportReport{}, errs.E(op, errs.TooLarge, "more than %d rows", MaxImportRows)
	}
	rep := ImportReport{Rows: len(rows), DryRun: opts.DryRun, Partial: opts.Partial, Errors: []RowError{}}
	valid := make([]ImportRow, 0, len(rows))
	idRow := map[string]int{}
	for _, r := range rows {
		ps := append([]Problem(nil), r.Problems...)
		e := r.Entry.Normalize()
		e.ID = strings.TrimSpace(e.ID)
		if e.ID != "" {
			if !ValidID(e.ID) {
				ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("must be 1-%d letters, digits or _-.:", MaxIDLen)})
			} else if first, dup := idRow[e.ID]; dup {
				ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("repeats the id of row %d", first)})
			} else {
				idRow[e.ID] = r.Row
			}
		}
		if err := e.Validate(); err != nil && !unreadable(r.Problems) {
			for _, p := range ProblemsOf(err) {
				if !reported(r.Problems, p.Field) {
					ps = append(ps, p)
				}
			}
		}
		if len(ps) > 0 {
			rep.Failed++
			for _, p := range ps {
				rep.Errors = append(rep.Errors, RowError{Row: r.Row, Field: p.Field, Message: p.Message})
			}
			continue
		}
		r.Entry = e
		valid = append(valid, r)
	}
	if rep.Failed > 0 && !opts.Partial {
		if opts.DryRun {
			return rep, nil
		}
		first := rep.Errors[0]
		where := first.Message
		if first.Field != "" {
			where = first.Field + ": " + first.Message
		}
		return rep, errs.E(op, errs.Invalid, "import refused, nothing was imported: %d of %d rows have errors (row %d: %s)",
			rep.Failed, rep.Rows, first.Row, where).With("errors", rep.Errors).With("failed", rep.Failed).With("rows", rep.Rows)
	}
	if opts.DryRun {
		for _, r := range valid {
			exists := false
			if r.Entry.ID != "" {
				_, err := s.store.EntryGet(ctx, tenantID, r.Entry.ID)
				if err != nil && !errs.Is(err, errs.NotFound) {
					return ImportReport{}, errs.Wrap(op, err)
				}
				exists = err == nil
			}
			if exists {
				rep.Updated++
			} else {
				rep.Created++
			}
		}
		return rep, nil
	}
	if len(valid) == 0 {
		return rep, nil
	}
	now := s.now()
	created, updated := 0, 0
	err := s.store.InTx(ctx, func(tx Store) error {
		created, updated = 0, 0
		for _, r := range valid {
			e := r.Entry
			e.TenantID, e.CreatedAt, e.UpdatedAt = tenantID, now, now
			if e.ID != "" {
				cur, err := tx.EntryGet(ctx, tenantID, e.ID)
				switch {
				case err == nil:
					e.Version = cur.Version
					if r.KeepChoices {
						e.Answer.Choices = cur.Answer.Choices
					}
					if _, err := tx.EntryUpdate(ctx, e, actor); err != nil {
						return rowError(r.Row, err)
					}
					updated++
					continue
				case !errs.Is(err, errs.NotFound):
					return err
				}
			} else {
				e.ID = s.newID()
			}
			e.Version = 1
			if _, err := tx.EntryCreate(ctx, e, actor); err != nil {
				return rowError(r.Row, err)
			}
			created++
		}
		return nil
	})
	if err != nil {
		return ImportReport{}, errs.Wrap(op, err)
	}
	rep.Created, rep.Updated = created, updated
	s.changed(ctx, tenantID)
	return rep, nil
}

// unreadable reports whether reading problems concern the row as a whole,
// so that validating what was read would only add noise.
func unreadable(ps []Problem) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return p.Field == "" })
}

// reported reports whether a reading problem already concerns field (or
// the object it is in), so validation does not report it twice.
func reported(ps []Problem, field string) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool {
		return field == p.Field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[")
	})
}

// rowError names the import row a store error happened at.
func rowError(row int, err error) error {
	return &errs.Error{Code: errs.CodeOf(err), Msg: fmt.Sprintf("row %d: %s", row, errs.MessageOf(err)), Err: err}
}

// Export returns every entry of a tenant, by question, for WriteJSON or
// WriteCSV.
func (s *Service) Export(ctx context.Context, tenantID string) ([]Entry, error) {
	es, err := s.store.EntryList(ctx, tenantID, EntryFilter{})
	return es, errs.Wrap("kb.Export", err)
}

// WriteJSON writes entries as a JSON array, one entry per line, as the
// API shows them.
func WriteJSON(w io.Writer, entries []Entry) error {
	var b bytes.Buffer
	b.WriteString("[")
	for i, e := range entries {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
		line, err := json.Marshal(e)
		if err != nil {
			return errs.E("kb.WriteJSON", errs.Internal, "encode entry %s: %v", e.ID, err)
		}
		b.Write(line)
		if b.Len() > 64<<10 {
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	b.WriteString("\n]\n")
	_, err := w.Write(b.Bytes())
	return err
}

// WriteCSV writes entries as CSV with the CSVColumns header. Choices are
// not written (CSV has none).
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return err
	}
	for _, e := range entries {
		rec := []string{
			guard(e.ID), guard(e.Question), guard(joinMulti(e.Variants)), guard(e.Answer.Text), guard(joinMulti(e.Keywords)),
			guard(e.Category), string(e.Language), fmt.Sprint(e.Enabled),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
