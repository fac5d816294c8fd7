// This file holds the contacts API under /api/v1/contacts
// (docs/contacts.md): search, a contact with its identities across
// channels, profile edits, history on every channel, merge candidates,
// audited merges with undo, export of everything held about a person, and
// erasure. Supervisors and admins work on any contact of the tenant; an
// agent sees and edits the contacts of the sessions they hold. Merging is
// for supervisors, export, erasure and the merge settings for admins.

package console

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// contactRoutes registers the contacts API on r (the authenticated
// /api/v1 group). The fixed paths come before /contacts/:id.
func (s *Server) contactRoutes(r fiber.Router) {
	sup, admin := s.role(agents.RoleSupervisor), s.role(agents.RoleAdmin)
	r.Get("/contacts", sup, s.contactList)
	r.Post("/contacts/merge", sup, s.contactMerge)
	r.Get("/contacts/merges", sup, s.contactMergeList)
	r.Post("/contacts/merges/:id/undo", sup, s.contactMergeUndo)
	r.Get("/contacts/settings", sup, s.contactSettingsGet)
	r.Put("/contacts/settings", admin, s.contactSettingsPut)
	r.Get("/contacts/:id", s.contactGet)
	r.Patch("/contacts/:id", s.contactPatch)
	r.Delete("/contacts/:id", admin, s.contactDelete)
	r.Get("/contacts/:id/history", s.contactHistory)
	r.Get("/contacts/:id/merge-candidates", sup, s.contactCandidates)
	r.Get("/contacts/:id/export", admin, s.contactExport)
}

// contacts is the contact rules over the engine's store; it holds no state
// of its own, so one per request costs an allocation.
func (s *Server) contacts() *session.Contacts {
	return session.NewContacts(s.d.Engine.Store(), clock.Real{}, s.d.Log)
}

// contactStates are the states of sessions that let an agent see their
// contact: the agent holds them now.
var contactStates = []session.State{session.StateOffered, session.StateActive, session.StateWrapup}

// visibleContact checks that the principal may see contact id: a
// supervisor any of the tenant's, an agent those of the sessions they
// hold. An id of another tenant is NotFound before anything else.
func (s *Server) visibleContact(ctx context.Context, p agents.Principal, id string) (session.Contact, error) {
	st := s.d.Engine.Store()
	c, err := st.ContactGet(ctx, p.TenantID, id)
	if err != nil || p.Can(agents.RoleSupervisor) {
		return c, err
	}
	ss, err := st.SessionList(ctx, p.TenantID, session.SessionFilter{AgentID: p.AgentID, States: contactStates, Limit: 1000})
	if err != nil {
		return session.Contact{}, err
	}
	for _, se := range ss {
		if se.ContactID == id {
			return c, nil
		}
	}
	return session.Contact{}, errs.E("contact", errs.Forbidden, "the contact is not in one of your sessions")
}

// identityView is an identity with the end of its channel's
// customer-service window, when the channel has one.
type identityView struct {
	session.Identity
	WindowEndsAt *time.Time `json:"window_ends_at,omitempty"`
}

func identityViews(ids []session.Identity) []identityView {
	out := make([]identityView, len(ids))
	for i, id := range ids {
		out[i].Identity = id
		if end, ok := id.WindowEnd(channels.Type(id.Channel).Window()); ok {
			out[i].WindowEndsAt = &end
		}
	}
	return out
}

func (s *Server) contactList(c *fiber.Ctx) error {
	const op = "list contacts"
	f := session.ContactFilter{Query: c.Query("q"), After: c.Query("after")}
	if len(f.Query) > session.MaxQueryLen {
		return errs.E(op, errs.Invalid, "q is longer than %d bytes", session.MaxQueryLen)
	}
	var err error
	if f.IncludeMerged, err = queryBool(c, "include_merged"); err != nil {
		return err
	}
	lim, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	f.Limit = int(lim)
	cs, err := s.d.Engine.Store().ContactList(c.UserContext(), principal(c).TenantID, f)
	if err != nil {
		return err
	}
	out := fiber.Map{"contacts": cs}
	if len(cs) == f.Limit {
		out["next"] = cs[len(cs)-1].ID
	}
	return c.JSON(out)
}

func (s *Server) contactGet(c *fiber.Ctx) error {
	p, ctx := principal(c), c.UserContext()
	ct, err := s.visibleContact(ctx, p, c.Params("id"))
	if err != nil {
		return err
	}
	ids, err := s.d.Engine.Store().ContactIdentities(ctx, p.TenantID, ct.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"contact": ct, "identities": identityViews(ids)})
}

func (s *Server) contactPatch(c *fiber.Ctx) error {
	p, ctx := principal(c), c.UserContext()
	var in session.ContactPatch
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.VIPLevel != nil && !p.Can(agents.RoleSupervisor) {
		return errs.E("update contact", errs.Forbidden, "vip_level: requires role supervisor or higher")
	}
	if _, err := s.visibleContact(ctx, p, c.Params("id")); err != nil {
		return err
	}
	ct, err := s.contacts().Update(ctx, p.TenantID, c.Params("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(ct)
}

func (s *Server) contactHistory(c *fiber.Ctx) error {
	p, ctx := principal(c), c.UserContext()
	if _, err := s.visibleContact(ctx, p, c.Params("id")); err != nil {
		return err
	}
	lim, err := queryInt(c, "limit", session.DefaultHistorySessions, 1, session.MaxHistorySessions)
	if err != nil {
		return err
	}
	msgs, err := queryInt(c, "messages", session.DefaultHistoryMessages, 1, session.MaxHistoryMessages)
	if err != nil {
		return err
	}
	h, err := s.d.Engine.Store().ContactHistory(ctx, p.TenantID, c.Params("id"),
		session.HistoryQuery{Before: c.Query("before"), Limit: int(lim), Messages: int(msgs)})
	if err != nil {
		return err
	}
	return c.JSON(h)
}

func (s *Server) contactCandidates(c *fiber.Ctx) error {
	cs, err := s.d.Engine.Store().ContactMergeCandidates(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"candidates": cs})
}

func (s *Server) contactMerge(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		SurvivorID string              `json:"survivor_id"`
		MergedID   string              `json:"merged_id"`
		Reason     session.MergeReason `json:"reason"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Reason == "" {
		in.Reason = session.MergeManual
	}
	mg, err := s.contacts().Merge(c.UserContext(), p.TenantID, in.SurvivorID, in.MergedID, in.Reason, p.AgentID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(mg)
}

func (s *Server) contactMergeList(c *fiber.Ctx) error {
	lim, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	f := session.MergeFilter{ContactID: c.Query("contact_id"), Before: c.Query("before"), Limit: int(lim)}
	ms, err := s.d.Engine.Store().ContactMerges(c.UserContext(), principal(c).TenantID, f)
	if err != nil {
		return err
	}
	out := fiber.Map{"merges": ms}
	if len(ms) == f.Limit {
		out["next"] = ms[len(ms)-1].ID
	}
	return c.JSON(out)
}

func (s *Server) contactMergeUndo(c *fiber.Ctx) error {
	p := principal(c)
	mg, err := s.contacts().Undo(c.UserContext(), p.TenantID, c.Params("id"), p.AgentID)
	if err != nil {
		return err
	}
	return c.JSON(mg)
}

func (s *Server) contactExport(c *fiber.Ctx) error {
	p := principal(c)
	x, err := s.contacts().Export(c.UserContext(), p.TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="contact-`+safeFilePart(x.Contact.ID)+`-`+x.ExportedAt.Format("20060102")+`.json"`)
	return c.JSON(x)
}

// safeFilePart keeps the characters of an id that are safe in a quoted
// file name.
func safeFilePart(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' {
			b = append(b, ch)
		}
	}
	return string(b)
}

func (s *Server) contactDelete(c *fiber.Ctx) error {
	p := principal(c)
	er, err := s.contacts().Erase(c.UserContext(), p.TenantID, c.Params("id"), p.AgentID)
	if err != nil {
		return err
	}
	return c.JSON(er)
}

func (s *Server) contactSettingsGet(c *fiber.Ctx) error {
	cs, err := s.d.Engine.Store().ContactSettingsGet(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(cs)
}

func (s *Server) contactSettingsPut(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		AutoMergeUnionID *bool `json:"auto_merge_union_id"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.AutoMergeUnionID == nil {
		return errs.E("contact settings", errs.Invalid, "auto_merge_union_id is required")
	}
	cs, err := s.contacts().SetSettings(c.UserContext(), session.ContactSettings{TenantID: p.TenantID, AutoMergeUnionID: *in.AutoMergeUnionID}, p.AgentID)
	if err != nil {
		return err
	}
	return c.JSON(cs)
}
