package session_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/session"
	"github.com/switchboard-acd/switchboard/session/sessionsql"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+8613800138000", "+8613800138000", true},
		{"8613800138000", "+8613800138000", true},      // WhatsApp wa_id: international digits
		{"+1 (555) 555-5555", "+15555555555", true},    // as people write it
		{"0049 151 1234.5678", "+4915112345678", true}, // 00 as +
		{"+19253920364", "+19253920364", true},
		{"0151 12345678", "", false},     // national, trunk zero: no country
		{"+0151123456", "", false},       // no country code starts with 0
		{"+1234", "", false},             // too short
		{"+1234567890123456", "", false}, // 16 digits: longer than E.164
		{"+49 151 1234 5678 ext 2", "", false},
		{"tel:+4915112345678", "", false},
		{"", "", false},
		{"+", "", false},
		{"+49１５１12345678", "", false}, // full-width digits are not read
	}
	for _, tc := range tests {
		got, err := session.NormalizePhone(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errs.Is(err, errs.Invalid) {
			t.Errorf("NormalizePhone(%q): error code %q, want invalid", tc.in, errs.CodeOf(err))
		}
	}
}

// samplePhones are the phone numbers in the providers' real payloads.
var samplePhones = regexp.MustCompile(`"(?:wa_id|from|display_phone_number|phone)"\s*:\s*"([^"]*)"`)

// phoneSeeds reads the phone numbers of the channel samples: JSON fields
// of WhatsApp payloads and the From/To of Twilio's form posts.
func phoneSeeds(t testing.TB) []string {
	dir := testenv.ChannelSamples(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range samplePhones.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
		if strings.HasSuffix(e.Name(), ".form") {
			if v, err := url.ParseQuery(strings.TrimSpace(string(b))); err == nil {
				out = append(out, v.Get("From"), v.Get("To"))
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d phone numbers found in the samples", len(out))
	}
	return out
}

func TestNormalizePhoneSamples(t *testing.T) {
	for _, p := range phoneSeeds(t) {
		got, err := session.NormalizePhone(p)
		if err != nil {
			t.Errorf("sample phone %q: %v", p, err)
			continue
		}
		if !session.ValidE164(got) {
			t.Errorf("sample phone %q normalised to %q, not E.164", p, got)
		}
	}
}

// FuzzNormalizePhone: whatever a channel sends, the result is E.164 or an
// Invalid error, and normalising a result again changes nothing.
func FuzzNormalizePhone(f *testing.F) {
	for _, p := range phoneSeeds(f) {
		f.Add(p)
	}
	f.Add("00 (49) 151-1234.5678")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := session.NormalizePhone(in)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("NormalizePhone(%q): code %q", in, errs.CodeOf(err))
			}
			return
		}
		if !session.ValidE164(got) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", in, got)
		}
		again, err := session.NormalizePhone(got)
		if err != nil || again != got {
			t.Fatalf("NormalizePhone(%q) = %q, %v; not idempotent", got, again, err)
		}
	})
}

// FuzzContactPatch: a PATCH body either is refused as Invalid or
// normalises to a patch that is valid and stays as it is when normalised
// again.
func FuzzContactPatch(f *testing.F) {
	for _, s := range []string{
		`{"display_name":"Ada","vip_level":2,"tags":["vip"," vip ","billing"],"attributes":{"tier":"gold","crm.id":"123"}}`,
		`{"tags":[]}`, `{"attributes":{}}`, `{"attributes":{"bad key":"x"}}`, `{"vip_level":-1}`,
		`{"display_name":"` + strings.Repeat("名", 201) + `"}`, `{}`, `{"tags":[""]}`, `{"tags":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p session.ContactPatch
		if err := json.Unmarshal(body, &p); err != nil {
			return
		}
		n, err := p.Normalize()
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Normalize(%s): code %q", body, errs.CodeOf(err))
			}
			return
		}
		if n.DisplayName != nil && (!utf8.ValidString(*n.DisplayName) || utf8.RuneCountInString(*n.DisplayName) > session.MaxDisplayNameLen) {
			t.Fatalf("Normalize(%s): name %q out of bounds", body, *n.DisplayName)
		}
		if n.Tags != nil && len(*n.Tags) > session.MaxTags {
			t.Fatalf("Normalize(%s): %d tags", body, len(*n.Tags))
		}
		if n.Attributes != nil {
			if err := session.ValidateAttributes(*n.Attributes); err != nil {
				t.Fatalf("Normalize(%s): attributes %v", body, err)
			}
		}
		again, err := n.Normalize()
		if err != nil || !cmp.Equal(n, again) {
			t.Fatalf("Normalize is not idempotent on %s: %+v, %v", body, again, err)
		}
	})
}

func TestNormalizeTagsAndAttributes(t *testing.T) {
	got, err := session.NormalizeTags([]string{" vip", "billing", "vip ", "客户"})
	if err != nil || !slices.Equal(got, []string{"vip", "billing", "客户"}) {
		t.Errorf("NormalizeTags = %q, %v", got, err)
	}
	for _, bad := range [][]string{{""}, {strings.Repeat("x", session.MaxTagLen+1)}, {"\xff"}} {
		if _, err := session.NormalizeTags(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("NormalizeTags(%q) = %v, want invalid", bad, err)
		}
	}
	many := make([]string, session.MaxTags+1)
	for i := range many {
		many[i] = strings.Repeat("t", i+1)[:min(i+1, 40)] + string(rune('a'+i%26))
	}
	if _, err := session.NormalizeTags(many); !errs.Is(err, errs.Invalid) {
		t.Errorf("NormalizeTags of %d tags = %v, want invalid", len(many), err)
	}
	for _, bad := range []map[string]string{{"": "x"}, {"a b": "x"}, {"k": strings.Repeat("v", session.MaxAttributeValue+1)}, {"k": "\xff"}} {
		if err := session.ValidateAttributes(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("ValidateAttributes(%q) = %v, want invalid", bad, err)
		}
	}
	if err := session.ValidateAttributes(map[string]string{"crm.id": "123", "tier_2": "gold", "a-b": ""}); err != nil {
		t.Errorf("ValidateAttributes of good keys: %v", err)
	}
	if _, err := (session.ContactPatch{}).Normalize(); !errs.Is(err, errs.Invalid) {
		t.Errorf("an empty patch = %v, want invalid", err)
	}
}

func TestCombine(t *testing.T) {
	s := session.Profile{DisplayName: "", VIPLevel: 1, Tags: []string{"a", "b"}, Attributes: map[string]string{"k": "s"}}
	m := session.Profile{DisplayName: "Bea", VIPLevel: 4, Tags: []string{"b", "c"}, Attributes: map[string]string{"k": "m", "z": "m", "y": "m"}}
	want := session.Profile{DisplayName: "Bea", VIPLevel: 4, Tags: []string{"a", "b", "c"}, Attributes: map[string]string{"k": "s", "y": "m", "z": "m"}}
	if diff := cmp.Diff(want, session.Combine(s, m)); diff != "" {
		t.Errorf("Combine (-want +got):\n%s", diff)
	}
	if !want.Equal(session.Combine(s, m)) || want.Equal(s) {
		t.Error("Profile.Equal disagrees with cmp")
	}
	// The caps hold when both sides are full.
	full := session.Profile{Attributes: map[string]string{}}
	other := session.Profile{Attributes: map[string]string{}}
	for i := range session.MaxTags {
		full.Tags = append(full.Tags, "s"+string(rune('A'+i)))
		other.Tags = append(other.Tags, "m"+string(rune('A'+i)))
	}
	for i := range session.MaxAttributes {
		full.Attributes["s"+string(rune('A'+i))] = "x"
		other.Attributes["m"+string(rune('A'+i))] = "x"
	}
	c := session.Combine(full, other)
	if len(c.Tags) != session.MaxTags || len(c.Attributes) != session.MaxAttributes || c.Tags[0] != "sA" {
		t.Errorf("Combine of full profiles: %d tags, %d attributes", len(c.Tags), len(c.Attributes))
	}
}

func TestHistoryQueryClamped(t *testing.T) {
	tests := []struct{ in, want session.HistoryQuery }{
		{session.HistoryQuery{}, session.HistoryQuery{Limit: session.DefaultHistorySessions, Messages: session.DefaultHistoryMessages}},
		{session.HistoryQuery{Limit: -1, Messages: 1000, Before: "x"}, session.HistoryQuery{Limit: session.DefaultHistorySessions, Messages: session.MaxHistoryMessages, Before: "x"}},
		{session.HistoryQuery{Limit: 1000, Messages: 3}, session.HistoryQuery{Limit: session.MaxHistorySessions, Messages: 3}},
	}
	for _, tc := range tests {
		if got := tc.in.Clamped(); got != tc.want {
			t.Errorf("%+v.Clamped() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// contactsOn returns the contact rules over a fresh store of kind with
// tenant t1, and the store.
func contactsOn(t *testing.T, kind string, clk clock.Clock) (*session.Contacts, session.Store) {
	t.Helper()
	d := testenv.DB(t, kind)
	if _, err := d.ExecContext(t.Context(), d.Rebind(`INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`),
		"t1", "Tenant", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	st := sessionsql.New(d)
	return session.NewContacts(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil))), st
}

func TestContactsObserve(t *testing.T) {
	start := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			clk := clock.NewFake(start.Add(time.Hour))
			cs, st := contactsOn(t, kind, clk)
			resolve := func(acc, ext string, at time.Time) session.Contact {
				t.Helper()
				c, err := st.ContactResolve(ctx, "t1", acc, ext, ext, at)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.ConversationEnsure(ctx, "t1", acc, c.ID, at); err != nil {
					t.Fatal(err)
				}
				return c
			}
			oa := resolve("oa1", "openid-1", start)                    // the oldest
			kf := resolve("kf1", "external-1", start.Add(time.Minute)) // same person on WeCom
			wa := resolve("wa1", "8613800138000", start.Add(2*time.Minute))
			sms := resolve("sms1", "+8613800138000", start.Add(3*time.Minute))

			// WhatsApp's wa_id comes without "+"; the phone is verified.
			o, err := cs.Observe(ctx, "t1", "wa1", "8613800138000", session.IdentityFacts{
				Channel: "whatsapp", Phone: "8613800138000", PhoneVerified: true, DisplayName: "  Li Lei ", InboundAt: start.Add(time.Hour)})
			if err != nil {
				t.Fatalf("Observe: %v", err)
			}
			if o.Identity.Phone != "+8613800138000" || o.Identity.DisplayName != "Li Lei" || len(o.Candidates) != 0 || len(o.Merges) != 0 {
				t.Errorf("first WhatsApp message: %+v", o)
			}
			// The SMS sender has the same number: a candidate, never merged
			// by itself (even with auto-merge on).
			if _, err := cs.SetSettings(ctx, session.ContactSettings{TenantID: "t1", AutoMergeUnionID: true}, "admin1"); err != nil {
				t.Fatal(err)
			}
			o, err = cs.Observe(ctx, "t1", "sms1", "+8613800138000", session.IdentityFacts{Channel: "sms", Phone: "+86 138 0013 8000", PhoneVerified: true})
			if err != nil {
				t.Fatalf("Observe: %v", err)
			}
			if len(o.Merges) != 0 || len(o.Candidates) != 1 || o.Candidates[0].Contact.ID != wa.ID {
				t.Errorf("same verified phone: %+v; want wa as a candidate, no merge", o)
			}
			// The same facts again: nothing new, no lookup.
			o, err = cs.Observe(ctx, "t1", "sms1", "+8613800138000", session.IdentityFacts{Phone: "+8613800138000", PhoneVerified: true})
			if err != nil || o.Candidates != nil || o.Merges != nil {
				t.Errorf("repeated facts: %+v, %v; want no candidates looked up", o, err)
			}

			// Union ids with auto-merge off: candidates only.
			if _, err := cs.SetSettings(ctx, session.ContactSettings{TenantID: "t1"}, "admin1"); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.Observe(ctx, "t1", "oa1", "openid-1", session.IdentityFacts{UnionID: "u-1"}); err != nil {
				t.Fatal(err)
			}
			o, err = cs.Observe(ctx, "t1", "kf1", "external-1", session.IdentityFacts{UnionID: "u-1"})
			if err != nil || len(o.Merges) != 0 || len(o.Candidates) != 1 || o.Candidates[0].Contact.ID != oa.ID {
				t.Errorf("union id, auto-merge off: %+v, %v", o, err)
			}
			if got, _ := st.ContactGet(ctx, "t1", kf.ID); got.MergedInto != "" {
				t.Errorf("merged with auto-merge off: %+v", got)
			}

			// With auto-merge on, the next sighting of the union id merges
			// into the oldest contact, audited as the system.
			settings, err := cs.SetSettings(ctx, session.ContactSettings{TenantID: "t1", AutoMergeUnionID: true}, "admin1")
			if err != nil || !settings.AutoMergeUnionID || settings.UpdatedBy != "admin1" || !settings.UpdatedAt.Equal(start.Add(time.Hour)) {
				t.Fatalf("SetSettings = %+v, %v", settings, err)
			}
			if _, _, err := st.IdentityUpdateFacts(ctx, "t1", "kf1", "external-1", session.IdentityFacts{UnionID: "u-other"}); err != nil {
				t.Fatal(err)
			}
			o, err = cs.Observe(ctx, "t1", "kf1", "external-1", session.IdentityFacts{UnionID: "u-1", InboundAt: start.Add(2 * time.Hour)})
			if err != nil {
				t.Fatalf("Observe: %v", err)
			}
			if len(o.Merges) != 1 {
				t.Fatalf("auto-merge: %+v; want one merge", o)
			}
			mg := o.Merges[0]
			if mg.SurvivorID != oa.ID || mg.MergedID != kf.ID || mg.Actor != session.SystemActor || mg.Reason != session.MergeUnionID ||
				!mg.CreatedAt.Equal(start.Add(time.Hour)) {
				t.Errorf("auto-merge = %+v; want kf into oa by the system", mg)
			}
			if o.Identity.ContactID != oa.ID || len(o.Candidates) != 0 {
				t.Errorf("after the auto-merge: identity %+v candidates %v", o.Identity, o.Candidates)
			}
			if c, err := st.ContactResolve(ctx, "t1", "kf1", "external-1", "", start); err != nil || c.ID != oa.ID {
				t.Errorf("resolve after auto-merge = %s, %v; want %s", c.ID, err, oa.ID)
			}
			_ = sms

			// A phone no channel could place is dropped; the rest is kept.
			o, err = cs.Observe(ctx, "t1", "oa1", "openid-1", session.IdentityFacts{Phone: "0151 1234", DisplayName: "Han Meimei"})
			if err != nil || o.Identity.Phone != "" || o.Identity.DisplayName != "Han Meimei" {
				t.Errorf("unreadable phone: %+v, %v", o.Identity, err)
			}
			_, err = cs.Observe(ctx, "t1", "oa1", "nobody", session.IdentityFacts{})
			if !errs.Is(err, errs.NotFound) {
				t.Errorf("Observe unknown identity: %v, want not found", err)
			}
		})
	}
}

// TestContactsAutoMergeRefused: an auto-merge the store refuses (an open
// session in a conversation that would be kept) leaves a candidate and
// does not fail the message.
func TestContactsAutoMergeRefused(t *testing.T) {
	start := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			cs, st := contactsOn(t, kind, clock.NewFake(start))
			a, err := st.ContactResolve(ctx, "t1", "oa1", "openid-a", "", start)
			if err != nil {
				t.Fatal(err)
			}
			b, err := st.ContactResolve(ctx, "t1", "oa1", "openid-b", "", start.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []session.Contact{a, b} {
				if _, err := st.ConversationEnsure(ctx, "t1", "oa1", c.ID, start); err != nil {
					t.Fatal(err)
				}
			}
			convB, err := st.ConversationEnsure(ctx, "t1", "oa1", b.ID, start)
			if err != nil {
				t.Fatal(err)
			}
			se := session.Session{TenantID: "t1", ID: "open", ConversationID: convB.ID, ContactID: b.ID, AccountID: "oa1",
				Channel: "wechat_oa", State: session.StateActive, Version: 1, CreatedAt: start, LastContactAt: start}
			if err := st.SessionInsert(ctx, se); err != nil {
				t.Fatal(err)
			}
			if err := st.ConversationOpenSession(ctx, "t1", convB.ID, "", se.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.SetSettings(ctx, session.ContactSettings{TenantID: "t1", AutoMergeUnionID: true}, "admin1"); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.Observe(ctx, "t1", "oa1", "openid-a", session.IdentityFacts{UnionID: "u"}); err != nil {
				t.Fatal(err)
			}
			o, err := cs.Observe(ctx, "t1", "oa1", "openid-b", session.IdentityFacts{UnionID: "u"})
			if err != nil {
				t.Fatalf("Observe: %v", err)
			}
			if len(o.Merges) != 0 || len(o.Candidates) != 1 || o.Candidates[0].Contact.ID != a.ID {
				t.Errorf("refused auto-merge: %+v; want a as a candidate", o)
			}
		})
	}
}

func TestContactsValidate(t *testing.T) {
	cs, st := contactsOn(t, "sqlite", clock.NewFake(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)))
	ctx := t.Context()
	c, err := st.ContactResolve(ctx, "t1", "oa1", "a", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"merge without ids":   func() error { _, err := cs.Merge(ctx, "t1", "", c.ID, session.MergeManual, "a1"); return err },
		"merge into itself":   func() error { _, err := cs.Merge(ctx, "t1", c.ID, c.ID, session.MergeManual, "a1"); return err },
		"merge, bad reason":   func() error { _, err := cs.Merge(ctx, "t1", c.ID, "x", "guess", "a1"); return err },
		"merge without actor": func() error { _, err := cs.Merge(ctx, "t1", c.ID, "x", session.MergeManual, ""); return err },
		"undo without actor":  func() error { _, err := cs.Undo(ctx, "t1", "m", ""); return err },
		"erase without actor": func() error { _, err := cs.Erase(ctx, "t1", c.ID, ""); return err },
		"empty update":        func() error { _, err := cs.Update(ctx, "t1", c.ID, session.ContactPatch{}); return err },
		"bad vip": func() error {
			_, err := cs.Update(ctx, "t1", c.ID, session.ContactPatch{VIPLevel: ptrTo(session.MaxVIPLevel + 1)})
			return err
		},
		"bad union id": func() error {
			_, err := cs.Observe(ctx, "t1", "oa1", "a", session.IdentityFacts{UnionID: strings.Repeat("u", session.MaxUnionIDLen+1)})
			return err
		},
	} {
		if err := call(); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	x, err := cs.Export(ctx, "t1", c.ID)
	if err != nil || !x.ExportedAt.Equal(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("Export stamped %v, %v; want the clock's time", x.ExportedAt, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
