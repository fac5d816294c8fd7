package console_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/session"
)

// contactOf reads the contact id of a session.
func contactOf(t *testing.T, n *apptest.Node, token, sessionPath string) string {
	t.Helper()
	var se struct {
		ContactID string `json:"contact_id"`
	}
	want(t, n, 200, "GET", sessionPath, token, nil).JSON(t, &se)
	if se.ContactID == "" {
		t.Fatalf("no contact_id in session %s", sessionPath)
	}
	return se.ContactID
}

type contactDetail struct {
	Contact    session.Contact `json:"contact"`
	Identities []struct {
		session.Identity
		WindowEndsAt *time.Time `json:"window_ends_at"`
	} `json:"identities"`
}

// shareUnionID gives the first identity of each contact the same union id,
// as a WeChat message carrying it would.
func shareUnionID(t *testing.T, n *apptest.Node, tenantID, union string, contactIDs ...string) {
	t.Helper()
	st := n.App.Engine.Store()
	for _, id := range contactIDs {
		ids, err := st.ContactIdentities(t.Context(), tenantID, id)
		if err != nil || len(ids) == 0 {
			t.Fatalf("identities of %s: %v, %v", id, ids, err)
		}
		if _, _, err := st.IdentityUpdateFacts(t.Context(), tenantID, ids[0].AccountID, ids[0].ExternalID,
			session.IdentityFacts{UnionID: union, InboundAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// contactsWalk calls every operation of the contacts API (part of
// TestOpenAPIWalk). walker is the contact of a closed session, offered
// the contact of alice's active one.
func contactsWalk(t *testing.T, n *apptest.Node, admin, sup, alice, closedSessionID, activeSessionPath string) {
	const c = "/api/v1/contacts"
	walker := contactOf(t, n, sup, "/api/v1/sessions/"+closedSessionID)
	offered := contactOf(t, n, sup, activeSessionPath)

	want(t, n, 200, "GET", c+"?q=visitor&include_merged=false&limit=10", sup, nil)
	want(t, n, 200, "GET", c+"?after="+walker, admin, nil)
	want(t, n, 400, "GET", c+"?limit=0", sup, nil)
	want(t, n, 400, "GET", c+"?after=nobody", sup, nil)
	want(t, n, 403, "GET", c, alice, nil)

	// alice holds offered's session: she sees and edits it, not walker.
	want(t, n, 200, "GET", c+"/"+offered, alice, nil)
	want(t, n, 403, "GET", c+"/"+walker, alice, nil)
	want(t, n, 200, "GET", c+"/"+walker, sup, nil)
	want(t, n, 404, "GET", c+"/nobody", sup, nil)
	want(t, n, 200, "PATCH", c+"/"+offered, alice, map[string]any{"tags": []string{"walk"}, "attributes": map[string]string{"crm.id": "42"}})
	want(t, n, 403, "PATCH", c+"/"+offered, alice, map[string]any{"vip_level": 3})
	want(t, n, 200, "PATCH", c+"/"+walker, sup, map[string]any{"vip_level": 2, "display_name": "Walker V."})
	want(t, n, 400, "PATCH", c+"/"+walker, sup, map[string]any{"tags": []string{""}})
	want(t, n, 400, "PATCH", c+"/"+walker, sup, map[string]any{})
	want(t, n, 404, "PATCH", c+"/nobody", sup, map[string]any{"vip_level": 1})
	want(t, n, 200, "GET", c+"/"+offered+"/history?limit=5&messages=10", alice, nil)
	want(t, n, 200, "GET", c+"/"+walker+"/history", sup, nil)
	want(t, n, 400, "GET", c+"/"+walker+"/history?before=nope", sup, nil)
	want(t, n, 400, "GET", c+"/"+walker+"/history?limit=101", sup, nil)
	want(t, n, 404, "GET", c+"/nobody/history", sup, nil)

	// The two visitors turn out to be one person (same union id).
	shareUnionID(t, n, "demo", "walk-union", walker, offered)
	var cands struct {
		Candidates []struct {
			Contact session.Contact `json:"contact"`
		} `json:"candidates"`
	}
	want(t, n, 200, "GET", c+"/"+walker+"/merge-candidates", sup, nil).JSON(t, &cands)
	if len(cands.Candidates) != 1 || cands.Candidates[0].Contact.ID != offered {
		t.Fatalf("candidates of walker = %+v, want offered", cands)
	}
	want(t, n, 403, "GET", c+"/"+walker+"/merge-candidates", alice, nil)
	want(t, n, 404, "GET", c+"/nobody/merge-candidates", sup, nil)

	// Both are on the web-chat account: offered's conversation would stay
	// behind with its active session, so walker cannot be the survivor.
	want(t, n, 409, "POST", c+"/merge", sup, map[string]any{"survivor_id": walker, "merged_id": offered, "reason": "union_id"})
	want(t, n, 400, "POST", c+"/merge", sup, map[string]any{"survivor_id": walker, "merged_id": offered, "reason": "hunch"})
	want(t, n, 400, "POST", c+"/merge", sup, map[string]any{"survivor_id": walker})
	want(t, n, 404, "POST", c+"/merge", sup, map[string]any{"survivor_id": walker, "merged_id": "nobody"})
	want(t, n, 403, "POST", c+"/merge", alice, map[string]any{"survivor_id": offered, "merged_id": walker})
	var mg session.Merge
	want(t, n, 201, "POST", c+"/merge", sup, map[string]any{"survivor_id": offered, "merged_id": walker, "reason": "union_id"}).JSON(t, &mg)
	if mg.SurvivorID != offered || mg.MergedID != walker || len(mg.Changes.KeptConversations) != 1 {
		t.Fatalf("merge = %+v", mg)
	}
	want(t, n, 409, "POST", c+"/merge", sup, map[string]any{"survivor_id": offered, "merged_id": walker})
	want(t, n, 200, "GET", c+"/"+walker, sup, nil)
	want(t, n, 200, "GET", c+"/merges?contact_id="+walker+"&limit=5", sup, nil)
	want(t, n, 200, "GET", c+"/merges?before="+mg.ID, admin, nil)
	want(t, n, 400, "GET", c+"/merges?before=nope", sup, nil)
	want(t, n, 403, "GET", c+"/merges", alice, nil)
	want(t, n, 200, "GET", c+"/"+offered+"/export", admin, nil)
	want(t, n, 403, "GET", c+"/"+offered+"/export", sup, nil)
	want(t, n, 404, "GET", c+"/nobody/export", admin, nil)
	want(t, n, 403, "POST", c+"/merges/"+mg.ID+"/undo", alice, nil)
	want(t, n, 200, "POST", c+"/merges/"+mg.ID+"/undo", sup, nil)
	want(t, n, 409, "POST", c+"/merges/"+mg.ID+"/undo", sup, nil)
	want(t, n, 404, "POST", c+"/merges/nope/undo", sup, nil)

	want(t, n, 200, "GET", c+"/settings", sup, nil)
	want(t, n, 200, "PUT", c+"/settings", admin, map[string]any{"auto_merge_union_id": true})
	want(t, n, 200, "PUT", c+"/settings", admin, map[string]any{"auto_merge_union_id": false})
	want(t, n, 400, "PUT", c+"/settings", admin, map[string]any{})
	want(t, n, 403, "PUT", c+"/settings", sup, map[string]any{"auto_merge_union_id": true})
	want(t, n, 403, "GET", c+"/settings", alice, nil)

	// Erasure: not while a session is open; walker's is closed.
	want(t, n, 409, "DELETE", c+"/"+offered, admin, nil)
	want(t, n, 403, "DELETE", c+"/"+walker, sup, nil)
	want(t, n, 200, "DELETE", c+"/"+walker, admin, nil)
	want(t, n, 404, "DELETE", c+"/"+walker, admin, nil)
	want(t, n, 404, "GET", c+"/"+walker, sup, nil)
}

// otherTenant creates a second tenant with an admin and returns the
// admin's token.
func otherTenant(t *testing.T, n *apptest.Node) string {
	t.Helper()
	ctx := t.Context()
	if _, err := agentsql.New(n.App.DB).TenantCreate(ctx, agents.Tenant{ID: "other", Name: "Other Co", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.App.Agents.CreateAgent(ctx, "other", agents.NewAgent{Username: "boss", DisplayName: "Boss",
		Password: apptest.Password, Role: agents.RoleAdmin, MaxSessions: 1}); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Token string `json:"token"`
	}
	want(t, n, 200, "POST", "/api/v1/auth/login", "", map[string]string{"tenant": "other", "username": "boss", "password": apptest.Password}).JSON(t, &out)
	return out.Token
}

// visitorContact starts a visitor who writes once and returns the id of
// the contact behind it.
func visitorContact(t *testing.T, n *apptest.Node, name, sup string) string {
	t.Helper()
	vt := n.Visitor(t, map[string]any{"name": name})
	want(t, n, 201, "POST", "/api/v1/webchat/messages", vt, map[string]any{"cid": "c1", "text": "hello, " + name})
	var list struct {
		Contacts []session.Contact `json:"contacts"`
	}
	want(t, n, 200, "GET", "/api/v1/contacts?q="+strings.ReplaceAll(name, " ", "%20"), sup, nil).JSON(t, &list)
	if len(list.Contacts) != 1 {
		t.Fatalf("contacts named %q: %+v", name, list.Contacts)
	}
	return list.Contacts[0].ID
}

// leave ends the open session of a web-chat contact from the customer's
// side, as a visitor closing the chat does.
func leave(t *testing.T, n *apptest.Node, contactID string) {
	t.Helper()
	ids, err := n.App.Engine.Store().ContactIdentities(t.Context(), "demo", contactID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("identities of %s: %v, %v", contactID, ids, err)
	}
	cu, err := n.App.Engine.ResolveCustomer(t.Context(), "demo", ids[0].AccountID, "webchat", ids[0].ExternalID, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.App.Engine.CustomerLeft(t.Context(), cu); err != nil {
		t.Fatal(err)
	}
}

// TestContactsAPI: a contact's identities, history and export through the
// API on each backend, and another tenant sees none of it.
func TestContactsAPI(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			admin, sup := n.Login(t, "admin"), n.Login(t, "supervisor")
			ada := visitorContact(t, n, "Ada Walker", sup)
			bea := visitorContact(t, n, "Bea Walker", sup)
			const c = "/api/v1/contacts"

			// The identity of a web-chat visitor, with no window (web chat
			// has none) and the message time recorded by the facts.
			var d contactDetail
			want(t, n, 200, "GET", c+"/"+ada, sup, nil).JSON(t, &d)
			if d.Contact.ID != ada || d.Contact.DisplayName != "Ada Walker" || len(d.Identities) != 1 || d.Identities[0].AccountID != "webchat-demo" {
				t.Fatalf("contact = %+v", d)
			}
			ident := d.Identities[0]
			if _, _, err := n.App.Engine.Store().IdentityUpdateFacts(t.Context(), "demo", ident.AccountID, ident.ExternalID,
				session.IdentityFacts{Channel: "whatsapp", Phone: "+4915112345678", PhoneVerified: true, InboundAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			want(t, n, 200, "GET", c+"/"+ada, sup, nil).JSON(t, &d)
			if w := d.Identities[0].WindowEndsAt; w == nil || w.Sub(*d.Identities[0].LastInboundAt) != 24*time.Hour {
				t.Errorf("window of a WhatsApp identity = %v, want 24 h after its last message", w)
			}

			// Merge, and the history shows both visitors' sessions. Both
			// wrote on the web-chat account: bea's conversation stays with
			// her, which her open bot session forbids until she leaves.
			want(t, n, 409, "POST", c+"/merge", sup, map[string]any{"survivor_id": ada, "merged_id": bea})
			leave(t, n, bea)
			var mg session.Merge
			want(t, n, 201, "POST", c+"/merge", sup, map[string]any{"survivor_id": ada, "merged_id": bea}).JSON(t, &mg)
			if mg.Reason != session.MergeManual || mg.Actor == "" {
				t.Errorf("merge = %+v; want a manual merge by the supervisor", mg)
			}
			var h session.History
			want(t, n, 200, "GET", c+"/"+ada+"/history", sup, nil).JSON(t, &h)
			var texts []string
			for _, it := range h.Items {
				for _, m := range it.Messages {
					if m.SenderKind == session.SenderContact {
						texts = append(texts, m.Text())
					}
				}
			}
			if got := strings.Join(texts, "|"); !strings.Contains(got, "hello, Ada Walker") || !strings.Contains(got, "hello, Bea Walker") {
				t.Errorf("history customer texts = %q, want both visitors", got)
			}

			// The export is a download with everything of both.
			r := want(t, n, 200, "GET", c+"/"+ada+"/export", admin, nil)
			if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="contact-`+ada) {
				t.Errorf("Content-Disposition = %q", cd)
			}
			var x session.Export
			if err := json.Unmarshal(r.Body, &x); err != nil {
				t.Fatal(err)
			}
			if x.Contact.ID != ada || len(x.MergedContacts) != 1 || len(x.Identities) != 2 || len(x.Sessions) != 2 || len(x.Merges) != 1 || len(x.Messages) < 2 {
				t.Errorf("export: contact %s, %d merged, %d identities, %d sessions, %d merges, %d messages",
					x.Contact.ID, len(x.MergedContacts), len(x.Identities), len(x.Sessions), len(x.Merges), len(x.Messages))
			}

			// Another tenant's admin: every id of demo is unknown.
			other := otherTenant(t, n)
			for _, call := range []struct{ method, path string }{
				{"GET", c + "/" + ada},
				{"GET", c + "/" + ada + "/history"},
				{"GET", c + "/" + ada + "/merge-candidates"},
				{"GET", c + "/" + ada + "/export"},
				{"DELETE", c + "/" + ada},
				{"POST", c + "/merges/" + mg.ID + "/undo"},
			} {
				want(t, n, 404, call.method, call.path, other, nil)
			}
			want(t, n, 404, "PATCH", c+"/"+ada, other, map[string]any{"vip_level": 1})
			want(t, n, 404, "POST", c+"/merge", other, map[string]any{"survivor_id": bea, "merged_id": ada})
			var list struct {
				Contacts []session.Contact `json:"contacts"`
			}
			want(t, n, 200, "GET", c+"?q=Walker", other, nil).JSON(t, &list)
			var merges struct {
				Merges []session.Merge `json:"merges"`
			}
			want(t, n, 200, "GET", c+"/merges", other, nil).JSON(t, &merges)
			if len(list.Contacts) != 0 || len(merges.Merges) != 0 {
				t.Errorf("other tenant sees %d contacts, %d merges", len(list.Contacts), len(merges.Merges))
			}
			var cs session.ContactSettings
			want(t, n, 200, "PUT", c+"/settings", other, map[string]any{"auto_merge_union_id": true}).JSON(t, &cs)
			want(t, n, 200, "GET", c+"/settings", sup, nil).JSON(t, &cs)
			if cs.AutoMergeUnionID || cs.TenantID != "demo" {
				t.Errorf("demo's settings after the other tenant saved its own: %+v", cs)
			}

			// Demo's supervisor undoes, demo's admin erases: both visitors
			// are gone from the list.
			want(t, n, 200, "POST", c+"/merges/"+mg.ID+"/undo", sup, nil)
			want(t, n, 409, "DELETE", c+"/"+ada, admin, nil) // her bot session is open
			leave(t, n, ada)
			for _, id := range []string{ada, bea} {
				var er session.Erasure
				want(t, n, 200, "DELETE", c+"/"+id, admin, nil).JSON(t, &er)
				if er.Messages == 0 || er.Identities != 1 {
					t.Errorf("erasure of %s = %+v", id, er)
				}
			}
			want(t, n, 200, "GET", c+"?q=Walker", sup, nil).JSON(t, &list)
			if len(list.Contacts) != 0 {
				t.Errorf("after erasure the list has %+v", list.Contacts)
			}
		})
	}
}
