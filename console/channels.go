// This file holds the channel-account administration API under
// /api/v1/channel-accounts: many accounts per channel type, each with
// provider credentials that are written here and never read back. Admins
// create, change, disable and delete accounts; supervisors may read them
// (without even the names of the credential fields). Answers show
// credentials_set and, to admins, which credential fields are present,
// and the webhook URL to configure at the provider.

package console

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// channelAccountRoutes registers the API on r (the authenticated /api/v1
// group). Nothing is registered without the account service.
func (s *Server) channelAccountRoutes(r fiber.Router) {
	if s.d.ChannelAccounts == nil {
		return
	}
	read, admin := s.role(agents.RoleSupervisor), s.role(agents.RoleAdmin)
	r.Get("/channel-accounts", read, s.listChannelAccounts)
	r.Post("/channel-accounts", admin, s.createChannelAccount)
	r.Get("/channel-accounts/:id", read, s.getChannelAccount)
	r.Patch("/channel-accounts/:id", admin, s.updateChannelAccount)
	r.Delete("/channel-accounts/:id", admin, s.deleteChannelAccount)
}

// channelAccountView is an account as clients see it: never the
// credentials or the secret (except a generated secret, once, in the
// answer of the create).
type channelAccountView struct {
	TenantID       string          `json:"tenant_id"`
	ID             string          `json:"id"`
	Type           channels.Type   `json:"type"`
	Name           string          `json:"name"`
	PublicKey      string          `json:"public_key"`
	DefaultGroupID string          `json:"default_group_id,omitempty"`
	Settings       json.RawMessage `json:"settings"`
	SessionCost    int             `json:"session_cost"`
	Enabled        bool            `json:"enabled"`
	Version        int64           `json:"version"`
	CredentialsSet bool            `json:"credentials_set"`
	// CredentialFields names the credential fields that hold a value;
	// admins only.
	CredentialFields []string `json:"credential_fields,omitempty"`
	SecretSet        bool     `json:"secret_set"`
	Secret           string   `json:"secret,omitempty"`
	// WebhookURL is where the provider is to call (all types but web chat,
	// whose widget connects by itself).
	WebhookURL string     `json:"webhook_url,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at,omitempty"`
}

func (s *Server) accountView(c *fiber.Ctx, a channels.Account) channelAccountView {
	v := channelAccountView{
		TenantID: a.TenantID, ID: a.ID, Type: a.Type, Name: a.Name, PublicKey: a.PublicKey, DefaultGroupID: a.DefaultGroupID,
		Settings: a.Settings, SessionCost: a.SessionCost, Enabled: a.Enabled, Version: a.Version,
		CredentialsSet: len(a.Credentials) > 0, SecretSet: a.Secret != "", CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	if len(v.Settings) == 0 {
		v.Settings = json.RawMessage(`{}`)
	}
	if principal(c).Can(agents.RoleAdmin) {
		v.CredentialFields = channels.CredentialFields(a.Credentials)
	}
	if a.Type != channels.WebChat {
		v.WebhookURL = s.publicBase(c) + "/webhooks/" + a.PublicKey
	}
	return v
}

// publicBase is the configured public URL, else the scheme and host the
// request came to.
func (s *Server) publicBase(c *fiber.Ctx) string {
	if s.d.PublicURL != "" {
		return strings.TrimRight(s.d.PublicURL, "/")
	}
	return c.BaseURL()
}

// channelAccountInput is the body of create and update. On update absent
// fields stay; credentials null removes the credentials; settings are
// merged key by key (null removes a key).
type channelAccountInput struct {
	Type           channels.Type   `json:"type"`
	Name           *string         `json:"name"`
	PublicKey      *string         `json:"public_key"`
	Secret         *string         `json:"secret"`
	Credentials    json.RawMessage `json:"credentials"`
	DefaultGroupID *string         `json:"default_group_id"`
	Settings       json.RawMessage `json:"settings"`
	SessionCost    *int            `json:"session_cost"`
	Enabled        *bool           `json:"enabled"`
	Version        int64           `json:"version"`
}

func strOrEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) listChannelAccounts(c *fiber.Ctx) error {
	f := channels.AccountFilter{Type: channels.Type(c.Query("type"))}
	if c.Query("enabled") != "" {
		b, err := queryBool(c, "enabled")
		if err != nil {
			return err
		}
		f.Enabled = &b
	}
	as, err := s.d.ChannelAccounts.List(c.UserContext(), principal(c).TenantID, f)
	if err != nil {
		return err
	}
	out := make([]channelAccountView, len(as))
	for i, a := range as {
		out[i] = s.accountView(c, a)
	}
	return c.JSON(fiber.Map{"accounts": out})
}

func (s *Server) createChannelAccount(c *fiber.Ctx) error {
	var in channelAccountInput
	if err := bind(c, &in); err != nil {
		return err
	}
	cost := 0
	if in.SessionCost != nil {
		cost = *in.SessionCost
	}
	a, err := s.d.ChannelAccounts.Create(c.UserContext(), principal(c).TenantID, channels.NewAccount{
		Type: in.Type, Name: strOrEmpty(in.Name), PublicKey: strOrEmpty(in.PublicKey), Secret: strOrEmpty(in.Secret), Credentials: in.Credentials,
		DefaultGroupID: strOrEmpty(in.DefaultGroupID), Settings: in.Settings, SessionCost: cost, Enabled: in.Enabled,
	})
	if err != nil {
		return err
	}
	v := s.accountView(c, a)
	if strOrEmpty(in.Secret) == "" {
		// Generated: this answer is the only place it can be learnt.
		v.Secret = a.Secret
	}
	c.Set(fiber.HeaderETag, etag(int(a.Version)))
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (s *Server) getChannelAccount(c *fiber.Ctx) error {
	a, err := s.d.ChannelAccounts.Get(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(int(a.Version)))
	return c.JSON(s.accountView(c, a))
}

func (s *Server) updateChannelAccount(c *fiber.Ctx) error {
	const op = "update channel account"
	var in channelAccountInput
	if err := bind(c, &in); err != nil {
		return err
	}
	v, err := baseVersion(c, int(in.Version))
	if err != nil {
		return err
	}
	ctx, tenantID, id := c.UserContext(), principal(c).TenantID, c.Params("id")
	if in.Type != "" {
		cur, err := s.d.ChannelAccounts.Get(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if in.Type != cur.Type {
			return errs.E(op, errs.Invalid, "type: an account's type cannot change; create a new account").
				With(channels.ProblemsKey, []channels.Problem{{Field: "type", Message: "cannot change"}})
		}
	}
	p := channels.AccountPatch{Name: in.Name, PublicKey: in.PublicKey, Secret: in.Secret, DefaultGroupID: in.DefaultGroupID,
		SessionCost: in.SessionCost, Enabled: in.Enabled}
	if in.Credentials != nil {
		p.Credentials = &in.Credentials
	}
	if in.Settings != nil {
		p.Settings = &in.Settings
	}
	a, err := s.d.ChannelAccounts.Update(ctx, tenantID, id, int64(v), p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(int(a.Version)))
	return c.JSON(s.accountView(c, a))
}

func (s *Server) deleteChannelAccount(c *fiber.Ctx) error {
	var v int
	if c.Get(fiber.HeaderIfMatch) != "" {
		var err error
		if v, err = baseVersion(c, 0); err != nil {
			return err
		}
	}
	if err := s.d.ChannelAccounts.Delete(c.UserContext(), principal(c).TenantID, c.Params("id"), int64(v)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
