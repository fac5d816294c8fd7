package app

import (
	"context"
	"os"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
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
		Name: "Website chat", PublicKey: DemoChatKey, Secret: d.ChatSecret, DefaultGroupID: support.ID, Enabled: true, CreatedAt: now}); err != nil {
		return nil, err
	}
	return d, nil
}

// seedDemoKB gives the demo tenant a small bilingual knowledge base, so a
// first chat shows the bot answering, offering choices and handing off.
func seedDemoKB(ctx context.Context, svc *kb.Service) error {
	entries := []kb.Entry{
		{Question: "How do I reset my password?", Category: "account", Language: kb.LangEnglish,
			Variants: []string{"I forgot my password", "reset password", "can't log in", "change my password"},
			Keywords: []string{"password", "login"},
			Answer:   kb.Answer{Text: "Open the login page, tap \"Forgot password\" and follow the link we email you."}},
		{Question: "What are your opening hours?", Category: "general", Language: kb.LangEnglish,
			Variants: []string{"when are you open", "opening times", "business hours", "are you open on weekends"},
			Answer:   kb.Answer{Text: "Our team is here Monday to Friday, 9:00 to 18:00."}},
		{Question: "How do I get a refund?", Category: "billing", Language: kb.LangEnglish,
			Variants: []string{"I want my money back", "refund my order", "how long does a refund take"},
			Keywords: []string{"refund"},
			Answer: kb.Answer{Text: "Was the order delivered?", Choices: []kb.Choice{
				{Label: "Not yet", Text: "Cancel it under My orders: the refund follows within 3 working days."},
				{Label: "Yes, I want to return it", Text: "Start a return under My orders; we refund when it arrives."},
				{Label: "Something else", Handoff: true}}}},
		{Question: "How much is delivery?", Category: "shipping", Language: kb.LangEnglish,
			Variants: []string{"shipping cost", "delivery fee", "is shipping free"},
			Answer:   kb.Answer{Text: "Delivery is free from 50; below that it costs 4.90."}},
		{Question: "如何修改收货地址？", Category: "shipping", Language: kb.LangChinese,
			Variants: []string{"怎么改地址", "收货地址填错了", "更换收货地址", "地址写错了"},
			Answer:   kb.Answer{Text: "发货前可在“我的订单”中修改收货地址；已发货请联系人工客服。"}},
		{Question: "退款多久到账？", Category: "billing", Language: kb.LangChinese,
			Variants: []string{"退款什么时候到", "钱什么时候退回来", "退款进度"},
			Answer:   kb.Answer{Text: "退款审核通过后 1-3 个工作日原路退回。"}},
	}
	for _, e := range entries {
		e.Enabled = true
		if _, err := svc.CreateEntry(ctx, DemoTenant, "seed", e); err != nil {
			return err
		}
	}
	_, err := svc.CreateRule(ctx, DemoTenant, kb.Rule{Name: "Complaints go to a person", Kind: kb.RuleContains,
		Keywords: []string{"complaint", "投诉"}, Handoff: true, Enabled: true})
	return err
}
