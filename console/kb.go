// This file holds the knowledge-base editing API under /api/v1/kb: FAQ
// entries with their history, import and export, keyword rules, bot
// settings and the unmatched-question bin. Admins and supervisors edit;
// agents may read entries (they see them as suggestions). GET /kb/search,
// the agent-assist search, lives in assist.go.

package console

import (
	"bytes"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

// Limits of the KB list endpoints.
const (
	kbDefaultLimit = 100
	kbMaxLimit     = 1000
	kbMaxOffset    = 1_000_000
)

// kbRoutes registers the KB editing API on r (the authenticated /api/v1
// group). Nothing is registered without a KB service.
func (s *Server) kbRoutes(r fiber.Router) {
	if s.d.KB == nil {
		return
	}
	edit := s.role(agents.RoleSupervisor)
	r.Get("/kb/entries", s.kbListEntries)
	r.Post("/kb/entries", edit, s.kbCreateEntry)
	r.Get("/kb/entries/:id", s.kbGetEntry)
	r.Put("/kb/entries/:id", edit, s.kbUpdateEntry)
	r.Delete("/kb/entries/:id", edit, s.kbDeleteEntry)
	r.Get("/kb/entries/:id/history", edit, s.kbEntryHistory)
	r.Post("/kb/import", edit, s.kbImport)
	r.Get("/kb/export", edit, s.kbExport)

	r.Get("/kb/rules", edit, s.kbListRules)
	r.Post("/kb/rules", edit, s.kbCreateRule)
	r.Get("/kb/rules/:id", edit, s.kbGetRule)
	r.Put("/kb/rules/:id", edit, s.kbUpdateRule)
	r.Delete("/kb/rules/:id", edit, s.kbDeleteRule)

	r.Get("/kb/settings", edit, s.kbGetSettings)
	r.Put("/kb/settings", edit, s.kbPutSettings)

	r.Get("/kb/unmatched", edit, s.kbListMisses)
	r.Post("/kb/unmatched/promote", edit, s.kbPromote)
	r.Get("/kb/unmatched/:id", edit, s.kbGetMiss)
	r.Delete("/kb/unmatched/:id", edit, s.kbDeleteMiss)
}

// queryBool reads a true/false query parameter (absent is false).
func queryBool(c *fiber.Ctx, name string) (bool, error) {
	switch c.Query(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errs.E("query", errs.Invalid, "%s must be true or false", name)
}

// etag is the entity tag of a versioned object: its version.
func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// baseVersion is the version an update is based on: If-Match ("3", W/"3"
// or 3) or the body's version; one of them is required and they must
// agree.
func baseVersion(c *fiber.Ctx, body int) (int, error) {
	const op = "version"
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" {
		if body < 1 {
			return 0, errs.E(op, errs.Invalid, `version: required, as If-Match: "<version>" or "version" in the body`)
		}
		return body, nil
	}
	v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
	if err != nil || v < 1 {
		return 0, errs.E(op, errs.Invalid, `If-Match: must be the version read, e.g. "3"`)
	}
	if body != 0 && body != v {
		return 0, errs.E(op, errs.Invalid, "version: the body says %d, If-Match says %d", body, v)
	}
	return v, nil
}

// entryInput is the body of entry create and update: the editable fields.
// A missing enabled means true.
type entryInput struct {
	Question string      `json:"question"`
	Variants []string    `json:"variants"`
	Answer   kb.Answer   `json:"answer"`
	Keywords []string    `json:"keywords"`
	Category string      `json:"category"`
	Language kb.Language `json:"language"`
	Enabled  *bool       `json:"enabled"`
	Version  int         `json:"version"`
}

func (in entryInput) entry() kb.Entry {
	return kb.Entry{
		Question: in.Question, Variants: in.Variants, Answer: in.Answer, Keywords: in.Keywords,
		Category: in.Category, Language: in.Language, Enabled: in.Enabled == nil || *in.Enabled,
	}
}

func (s *Server) kbListEntries(c *fiber.Ctx) error {
	const op = "list kb entries"
	f := kb.EntryFilter{Category: c.Query("category"), Language: kb.Language(c.Query("language")), Text: c.Query("q")}
	if !f.Language.Valid() {
		return errs.E(op, errs.Invalid, "language must be en or zh")
	}
	if len(f.Text) > kb.MaxQuestionLen {
		return errs.E(op, errs.Invalid, "q is longer than %d bytes", kb.MaxQuestionLen)
	}
	if v := c.Query("enabled"); v != "" {
		b, err := queryBool(c, "enabled")
		if err != nil {
			return err
		}
		f.Enabled = &b
	}
	lim, err := queryInt(c, "limit", kbDefaultLimit, 1, kbMaxLimit)
	if err != nil {
		return err
	}
	off, err := queryInt(c, "offset", 0, 0, kbMaxOffset)
	if err != nil {
		return err
	}
	f.Limit, f.Offset = int(lim), int(off)
	es, err := s.d.KB.ListEntries(c.UserContext(), principal(c).TenantID, f)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entries": es})
}

func (s *Server) kbCreateEntry(c *fiber.Ctx) error {
	var in entryInput
	if err := bind(c, &in); err != nil {
		return err
	}
	p := principal(c)
	e, err := s.d.KB.CreateEntry(c.UserContext(), p.TenantID, p.AgentID, in.entry())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(e.Version))
	return c.Status(fiber.StatusCreated).JSON(e)
}

func (s *Server) kbGetEntry(c *fiber.Ctx) error {
	e, err := s.d.KB.GetEntry(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(e.Version))
	return c.JSON(e)
}

func (s *Server) kbUpdateEntry(c *fiber.Ctx) error {
	var in entryInput
	if err := bind(c, &in); err != nil {
		return err
	}
	v, err := baseVersion(c, in.Version)
	if err != nil {
		return err
	}
	e := in.entry()
	e.ID, e.Version = c.Params("id"), v
	p := principal(c)
	if e, err = s.d.KB.UpdateEntry(c.UserContext(), p.TenantID, p.AgentID, e); err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(e.Version))
	return c.JSON(e)
}

func (s *Server) kbDeleteEntry(c *fiber.Ctx) error {
	p := principal(c)
	if err := s.d.KB.DeleteEntry(c.UserContext(), p.TenantID, c.Params("id"), p.AgentID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) kbEntryHistory(c *fiber.Ctx) error {
	cs, err := s.d.KB.EntryHistory(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"changes": cs})
}

// kbImport reads entries from a JSON or CSV body (by Content-Type, or
// ?format=) and imports them: all or nothing unless ?partial=true;
// ?dry_run=true only validates and counts.
func (s *Server) kbImport(c *fiber.Ctx) error {
	const op = "import kb entries"
	partial, err := queryBool(c, "partial")
	if err != nil {
		return err
	}
	dryRun, err := queryBool(c, "dry_run")
	if err != nil {
		return err
	}
	// The Content-Type tells the format; ?format= does for a body sent as
	// application/octet-stream (and overrides the Content-Type).
	format := kb.Format(c.Query("format"))
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	switch {
	case mt == "text/csv" && format == "":
		format = kb.FormatCSV
	case (mt == "application/json" || mt == "") && format == "":
		format = kb.FormatJSON
	case mt == "application/octet-stream" && format == "":
		return errs.E(op, errs.Invalid, "format: give ?format=json or ?format=csv for an application/octet-stream body")
	case mt != "text/csv" && mt != "application/json" && mt != "" && mt != "application/octet-stream":
		return errs.E(op, errs.Invalid, "Content-Type must be application/json, text/csv or application/octet-stream (with ?format=)")
	}
	if len(bytes.TrimSpace(c.Body())) == 0 {
		return errs.E(op, errs.Invalid, "the request body is empty: send the entries as JSON or CSV")
	}
	var rows []kb.ImportRow
	switch format {
	case kb.FormatJSON:
		rows, err = kb.ParseJSON(c.Body())
	case kb.FormatCSV:
		rows, err = kb.ParseCSV(bytes.NewReader(c.Body()))
	default:
		return errs.E(op, errs.Invalid, "format must be json or csv")
	}
	if err != nil {
		return err
	}
	p := principal(c)
	rep, err := s.d.KB.Import(c.UserContext(), p.TenantID, p.AgentID, rows, kb.ImportOptions{Partial: partial, DryRun: dryRun})
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

// kbExport answers every entry as a file import reads back.
func (s *Server) kbExport(c *fiber.Ctx) error {
	format := kb.Format(c.Query("format", string(kb.FormatJSON)))
	if format != kb.FormatJSON && format != kb.FormatCSV {
		return errs.E("export kb entries", errs.Invalid, "format must be json or csv")
	}
	tenantID := principal(c).TenantID
	es, err := s.d.KB.Export(c.UserContext(), tenantID)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if format == kb.FormatCSV {
		err = kb.WriteCSV(&b, es)
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	} else {
		err = kb.WriteJSON(&b, es)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	}
	if err != nil {
		return err
	}
	name := fmt.Sprintf("kb-%s-%s.%s", safeFileName(tenantID), time.Now().UTC().Format("20060102"), format)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	return c.Send(b.Bytes())
}

// safeFileName keeps the characters a file name may hold everywhere.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// ruleInput is the body of rule create and update. A missing enabled
// means true.
type ruleInput struct {
	Name     string      `json:"name"`
	Kind     kb.RuleKind `json:"kind"`
	Keywords []string    `json:"keywords"`
	Priority int         `json:"priority"`
	Answer   kb.Answer   `json:"answer"`
	EntryID  string      `json:"entry_id"`
	Handoff  bool        `json:"handoff"`
	GroupID  string      `json:"group_id"`
	Enabled  *bool       `json:"enabled"`
	Version  int         `json:"version"`
}

func (in ruleInput) rule() kb.Rule {
	return kb.Rule{
		Name: in.Name, Kind: in.Kind, Keywords: in.Keywords, Priority: in.Priority, Answer: in.Answer,
		EntryID: in.EntryID, Handoff: in.Handoff, GroupID: in.GroupID, Enabled: in.Enabled == nil || *in.Enabled,
	}
}

func (s *Server) kbListRules(c *fiber.Ctx) error {
	rs, err := s.d.KB.ListRules(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"rules": rs})
}

func (s *Server) kbCreateRule(c *fiber.Ctx) error {
	var in ruleInput
	if err := bind(c, &in); err != nil {
		return err
	}
	r, err := s.d.KB.CreateRule(c.UserContext(), principal(c).TenantID, in.rule())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(r.Version))
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *Server) kbGetRule(c *fiber.Ctx) error {
	r, err := s.d.KB.GetRule(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(r.Version))
	return c.JSON(r)
}

func (s *Server) kbUpdateRule(c *fiber.Ctx) error {
	var in ruleInput
	if err := bind(c, &in); err != nil {
		return err
	}
	v, err := baseVersion(c, in.Version)
	if err != nil {
		return err
	}
	r := in.rule()
	r.ID, r.Version = c.Params("id"), v
	if r, err = s.d.KB.UpdateRule(c.UserContext(), principal(c).TenantID, r); err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(r.Version))
	return c.JSON(r)
}

func (s *Server) kbDeleteRule(c *fiber.Ctx) error {
	if err := s.d.KB.DeleteRule(c.UserContext(), principal(c).TenantID, c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) kbGetSettings(c *fiber.Ctx) error {
	st, err := s.d.KB.GetSettings(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) kbPutSettings(c *fiber.Ctx) error {
	var in kb.Settings
	if err := bind(c, &in); err != nil {
		return err
	}
	st, err := s.d.KB.PutSettings(c.UserContext(), principal(c).TenantID, in)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) kbListMisses(c *fiber.Ctx) error {
	lim, err := queryInt(c, "limit", kbDefaultLimit, 1, kbMaxLimit)
	if err != nil {
		return err
	}
	gs, err := s.d.KB.ListMisses(c.UserContext(), principal(c).TenantID, int(lim))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"groups": gs})
}

func (s *Server) kbGetMiss(c *fiber.Ctx) error {
	g, err := s.d.KB.GetMiss(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(g)
}

func (s *Server) kbDeleteMiss(c *fiber.Ctx) error {
	if err := s.d.KB.DeleteMisses(c.UserContext(), principal(c).TenantID, []string{c.Params("id")}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// kbPromote answers 201 with the new entry, or 200 with the entry the
// texts were added to.
func (s *Server) kbPromote(c *fiber.Ctx) error {
	var in kb.Promotion
	if err := bind(c, &in); err != nil {
		return err
	}
	p := principal(c)
	e, created, err := s.d.KB.Promote(c.UserContext(), p.TenantID, p.AgentID, in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(e.Version))
	if created {
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(e)
}
