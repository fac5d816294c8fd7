package app

import (
	"context"
	"os"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// DemoTenant is the id of the tenant seeded on first start.
const DemoTenant = "demo"

// DemoChatKey is the public key of the demo web-chat account.
const DemoChatKey = "wc_demo"

// Demo describes what seeding created, for printing.
type Demo struct {
	Tenant      string
	ChatKey     string
	ChatSecret  string
	Credentials []Credential
}

// Credential is one seeded login.
type Credential struct {
	Username, Password string
	Role               agents.Role
}

// seedDemo creates the demo tenant when the database has no tenant yet. The
// passwords are random unless SWITCHBOARD_DEMO_PASSWORD sets them (for
// development and tests). It returns nil when there was nothing to do.
func seedDemo(ctx context.Context, store agents.Store, svc *agents.Service, accounts channels.AccountStore) (*Demo, error) {
	ts, err := store.TenantList(ctx)
	if err != nil {
		return nil, err
	}
	if len(ts) > 0 {
		return nil, nil
	}
	now := time.Now().UTC()
	if _, err := store.TenantCreate(ctx, agents.Tenant{ID: DemoTenant, Name: "Demo Company", CreatedAt: now}); err != nil {
		if errs.Is(err, errs.Duplicate) { // another node seeded first
			return nil, nil
		}
		return nil, err
	}
	sg := agents.NewGroup(DemoTenant, "support", "Support")
	sg.SLThresholdSec, sg.CreatedAt = 20, now
	support, err := store.GroupCreate(ctx, sg)
	if err != nil {
		return nil, err
	}
	slg := agents.NewGroup(DemoTenant, "sales", "Sales")
	slg.SLThresholdSec, slg.CreatedAt = 30, now
	sales, err := store.GroupCreate(ctx, slg)
	if err != nil {
		return nil, err
	}
	d := &Demo{Tenant: DemoTenant, ChatKey: DemoChatKey, ChatSecret: randomHex(16)}
	fixed := os.Getenv("SWITCHBOARD_DEMO_PASSWORD")
	both := []agents.Skill{{GroupID: support.ID, Proficiency: 4}, {GroupID: sales.ID, Proficiency: 3}}
	for _, u := range []struct {
		name, display string
		role          agents.Role
		skills        []agents.Skill
	}{
		{"admin", "Admin", agents.RoleAdmin, nil},
		{"supervisor", "Sam Supervisor", agents.RoleSupervisor, both},
		{"alice", "Alice", agents.RoleAgent, both},
		{"bob", "Bob", agents.RoleAgent, []agents.Skill{{GroupID: support.ID, Proficiency: 3}}},
	} {
		pw := fixed
		if pw == "" {
			pw = randomHex(6)
		}
		if _, err := svc.CreateAgent(ctx, DemoTenant, agents.NewAgent{Username: u.name, DisplayName: u.display, Password: pw,
			Role: u.role, MaxSessions: 3, Skills: u.skills}); err != nil {
			return nil, err
		}
		d.Credentials = append(d.Credentials, Credential{Username: u.name, Password: pw, Role: u.role})
	}
	tree := agents.ReasonTree{TenantID: DemoTenant, Mandatory: true, CreatedBy: "seed", CreatedAt: now, Nodes: []agents.ReasonNode{
		{Code: "billing", Label: "Billing", Children: []agents.ReasonNode{
			{Code: "billing.refund", Label: "Refund request"}, {Code: "billing.invoice", Label: "Invoice question"}}},
		{Code: "tech", Label: "Technical", Children: []agents.ReasonNode{
			{Code: "tech.login", Label: "Cannot log in"}, {Code: "tech.bug", Label: "Bug report"}}},
		{Code: "sales", Label: "Sales", Children: []agents.ReasonNode{{Code: "sales.pricing", Label: "Pricing"}}},
		{Code: "other", Label: "Other"},
	}}
	if _, err := store.ReasonTreeSave(ctx, tree); err != nil {
		return nil, err
	}
	if err := accounts.AccountCreate(ctx, channels.Account{TenantID: DemoTenant, ID: "webchat-demo", Type: channels.WebChat,
		Name: "Website chat", PublicKey: DemoChatKey, Secret: d.ChatSecret, DefaultGroupID: support.ID, CreatedAt: now}); err != nil {
		return nil, err
	}
	return d, nil
}
