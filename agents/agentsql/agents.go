package agentsql

import (
	"context"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// agentColumns leaves out password_hash: it is read only for login, by
// AgentGetByUsername, so it never reaches an Agent by accident.
const agentColumns = `tenant_id, id, username, display_name, role, max_sessions, state, state_reason, state_since, disabled, created_at`

type agentRow struct {
	TenantID    string    `db:"tenant_id"`
	ID          string    `db:"id"`
	Username    string    `db:"username"`
	DisplayName string    `db:"display_name"`
	Role        string    `db:"role"`
	MaxSessions int       `db:"max_sessions"`
	State       string    `db:"state"`
	StateReason string    `db:"state_reason"`
	StateSince  time.Time `db:"state_since"`
	Disabled    bool      `db:"disabled"`
	CreatedAt   time.Time `db:"created_at"`
}

// agentAuthRow is an agent with its password hash, for login only.
type agentAuthRow struct {
	agentRow
	PasswordHash string `db:"password_hash"`
}

func (r agentRow) toDomain(skills []agents.Skill) agents.Agent {
	if skills == nil {
		// An agent without skills serialises as [], not null.
		skills = []agents.Skill{}
	}
	return agents.Agent{
		TenantID:    r.TenantID,
		ID:          r.ID,
		Username:    r.Username,
		DisplayName: r.DisplayName,
		Role:        agents.Role(r.Role),
		MaxSessions: r.MaxSessions,
		State:       agents.State(r.State),
		StateReason: r.StateReason,
		StateSince:  r.StateSince.UTC(),
		Disabled:    r.Disabled,
		Skills:      skills,
		CreatedAt:   r.CreatedAt.UTC(),
	}
}

const skillColumns = `tenant_id, agent_id, group_id, proficiency, weight`

type skillRow struct {
	TenantID    string `db:"tenant_id"`
	AgentID     string `db:"agent_id"`
	GroupID     string `db:"group_id"`
	Proficiency int    `db:"proficiency"`
	Weight      int    `db:"weight"`
}

func (r skillRow) toDomain() agents.Skill {
	return agents.Skill{GroupID: r.GroupID, Proficiency: r.Proficiency, Weight: r.Weight}
}

// skillKey identifies an agent across tenants when grouping skill rows.
type skillKey struct{ tenantID, agentID string }

// groupSkills maps skill rows to their agents, keeping the row order.
func groupSkills(rows []skillRow) map[skillKey][]agents.Skill {
	m := map[skillKey][]agents.Skill{}
	for _, r := range rows {
		k := skillKey{r.TenantID, r.AgentID}
		m[k] = append(m[k], r.toDomain())
	}
	return m
}

// AgentCreate implements agents.Store.
func (s *Store) AgentCreate(ctx context.Context, a agents.Agent, passwordHash string) (agents.Agent, error) {
	const op = "agentsql.AgentCreate"
	a.Skills = agents.NormalizeSkills(a.Skills)
	if err := a.Validate(); err != nil {
		return agents.Agent{}, errs.Wrap(op, err)
	}
	if passwordHash == "" {
		return agents.Agent{}, errs.E(op, errs.Invalid, "password hash: must not be empty")
	}
	var out agents.Agent
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := exec(ctx, tx, `INSERT INTO agents (tenant_id, id, username, display_name, password_hash, role,
			max_sessions, state, state_reason, state_since, disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.TenantID, a.ID, a.Username, a.DisplayName, passwordHash, string(a.Role),
			a.MaxSessions, string(a.State), a.StateReason, ts(a.StateSince), a.Disabled, ts(a.CreatedAt)); err != nil {
			return err
		}
		if err := insertSkills(ctx, tx, a.TenantID, a.ID, a.Skills); err != nil {
			return err
		}
		var err error
		out, err = agentGet(ctx, tx, a.TenantID, a.ID)
		return err
	})
	if err != nil {
		if err = db.Translate(err); errs.Is(err, errs.Duplicate) {
			return agents.Agent{}, &errs.Error{Op: op, Code: errs.Duplicate, Msg: "agent already exists: username or id taken", Err: err}
		}
		if errs.Is(err, errs.Invalid) {
			return agents.Agent{}, &errs.Error{Op: op, Code: errs.Invalid, Msg: "unknown tenant or skill group", Err: err}
		}
		return agents.Agent{}, fail(op, err, "agent")
	}
	return out, nil
}

// insertSkills adds skills for one agent in one statement.
func insertSkills(ctx context.Context, ex db.Executor, tenantID, agentID string, skills []agents.Skill) error {
	if len(skills) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO agent_skills (` + skillColumns + `) VALUES `)
	args := make([]any, 0, 5*len(skills))
	for i, sk := range skills {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?)")
		args = append(args, tenantID, agentID, sk.GroupID, sk.Proficiency, sk.Weight)
	}
	_, err := exec(ctx, ex, q.String(), args...)
	return err
}

// agentGet reads one agent and its skills through ex.
func agentGet(ctx context.Context, ex db.Executor, tenantID, id string) (agents.Agent, error) {
	var r agentRow
	if err := get(ctx, ex, &r, `SELECT `+agentColumns+` FROM agents WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return agents.Agent{}, err
	}
	skills, err := agentSkills(ctx, ex, tenantID, id)
	if err != nil {
		return agents.Agent{}, err
	}
	return r.toDomain(skills), nil
}

func agentSkills(ctx context.Context, ex db.Executor, tenantID, agentID string) ([]agents.Skill, error) {
	var rows []skillRow
	if err := sel(ctx, ex, &rows, `SELECT `+skillColumns+` FROM agent_skills
		WHERE tenant_id = ? AND agent_id = ? ORDER BY group_id`, tenantID, agentID); err != nil {
		return nil, err
	}
	return groupSkills(rows)[skillKey{tenantID, agentID}], nil
}

// AgentGet implements agents.Store.
func (s *Store) AgentGet(ctx context.Context, tenantID, id string) (agents.Agent, error) {
	a, err := agentGet(ctx, s.db, tenantID, id)
	if err != nil {
		return agents.Agent{}, fail("agentsql.AgentGet", err, "agent")
	}
	return a, nil
}

// AgentGetByUsername implements agents.Store.
func (s *Store) AgentGetByUsername(ctx context.Context, tenantID, username string) (agents.Agent, string, error) {
	const op = "agentsql.AgentGetByUsername"
	var r agentAuthRow
	if err := get(ctx, s.db, &r, `SELECT `+agentColumns+`, password_hash FROM agents
		WHERE tenant_id = ? AND username = ?`, tenantID, username); err != nil {
		return agents.Agent{}, "", fail(op, err, "agent")
	}
	skills, err := agentSkills(ctx, s.db, tenantID, r.ID)
	if err != nil {
		return agents.Agent{}, "", fail(op, err, "agent")
	}
	return r.toDomain(skills), r.PasswordHash, nil
}

// AgentFindByUsername implements agents.Store.
func (s *Store) AgentFindByUsername(ctx context.Context, username string) ([]agents.Agent, error) {
	const op = "agentsql.AgentFindByUsername"
	var rows []agentRow
	if err := sel(ctx, s.db, &rows, `SELECT `+agentColumns+` FROM agents
		WHERE username = ? ORDER BY tenant_id`, username); err != nil {
		return nil, fail(op, err, "agent")
	}
	if len(rows) == 0 {
		return []agents.Agent{}, nil
	}
	var skills []skillRow
	if err := sel(ctx, s.db, &skills, `SELECT s.tenant_id, s.agent_id, s.group_id, s.proficiency, s.weight
		FROM agent_skills s JOIN agents a ON a.tenant_id = s.tenant_id AND a.id = s.agent_id
		WHERE a.username = ? ORDER BY s.tenant_id, s.agent_id, s.group_id`, username); err != nil {
		return nil, fail(op, err, "agent")
	}
	return agentsWithSkills(rows, skills), nil
}

// AgentList implements agents.Store. Skills of the whole tenant come in one
// query, not one per agent.
func (s *Store) AgentList(ctx context.Context, tenantID string) ([]agents.Agent, error) {
	const op = "agentsql.AgentList"
	var rows []agentRow
	if err := sel(ctx, s.db, &rows, `SELECT `+agentColumns+` FROM agents
		WHERE tenant_id = ? ORDER BY username`, tenantID); err != nil {
		return nil, fail(op, err, "agent")
	}
	if len(rows) == 0 {
		return []agents.Agent{}, nil
	}
	var skills []skillRow
	if err := sel(ctx, s.db, &skills, `SELECT `+skillColumns+` FROM agent_skills
		WHERE tenant_id = ? ORDER BY agent_id, group_id`, tenantID); err != nil {
		return nil, fail(op, err, "agent")
	}
	return agentsWithSkills(rows, skills), nil
}

func agentsWithSkills(rows []agentRow, skills []skillRow) []agents.Agent {
	bySkill := groupSkills(skills)
	out := make([]agents.Agent, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain(bySkill[skillKey{r.TenantID, r.ID}])
	}
	return out
}

// AgentUpdate implements agents.Store.
func (s *Store) AgentUpdate(ctx context.Context, a agents.Agent) (agents.Agent, error) {
	const op = "agentsql.AgentUpdate"
	if err := a.ValidateProfile(); err != nil {
		return agents.Agent{}, errs.Wrap(op, err)
	}
	var out agents.Agent
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := execOne(ctx, tx, `UPDATE agents SET display_name = ?, role = ?, max_sessions = ?, disabled = ?
			WHERE tenant_id = ? AND id = ?`,
			a.DisplayName, string(a.Role), a.MaxSessions, a.Disabled, a.TenantID, a.ID); err != nil {
			return err
		}
		var err error
		out, err = agentGet(ctx, tx, a.TenantID, a.ID)
		return err
	})
	if err != nil {
		return agents.Agent{}, fail(op, err, "agent")
	}
	return out, nil
}

// AgentSetPassword implements agents.Store.
func (s *Store) AgentSetPassword(ctx context.Context, tenantID, id, passwordHash string) error {
	const op = "agentsql.AgentSetPassword"
	if passwordHash == "" {
		return errs.E(op, errs.Invalid, "password hash: must not be empty")
	}
	if err := execOne(ctx, s.db, `UPDATE agents SET password_hash = ? WHERE tenant_id = ? AND id = ?`,
		passwordHash, tenantID, id); err != nil {
		return fail(op, err, "agent")
	}
	return nil
}

// AgentSetState implements agents.Store.
func (s *Store) AgentSetState(ctx context.Context, tenantID, id string, state agents.State, reason string, since time.Time) error {
	const op = "agentsql.AgentSetState"
	if !state.Valid() {
		return errs.E(op, errs.Invalid, "state: must be one of offline, ready, not_ready")
	}
	if err := execOne(ctx, s.db, `UPDATE agents SET state = ?, state_reason = ?, state_since = ?
		WHERE tenant_id = ? AND id = ?`,
		string(state), reason, ts(since), tenantID, id); err != nil {
		return fail(op, err, "agent")
	}
	return nil
}

// AgentSetSkills implements agents.Store. The agent row is locked first so
// that concurrent replacements apply one after the other instead of
// interleaving their deletes and inserts.
func (s *Store) AgentSetSkills(ctx context.Context, tenantID, id string, skills []agents.Skill) error {
	const op = "agentsql.AgentSetSkills"
	skills = agents.NormalizeSkills(skills)
	if err := agents.ValidateSkills(skills); err != nil {
		return errs.Wrap(op, err)
	}
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var got string
		if err := get(ctx, tx, &got, `SELECT id FROM agents WHERE tenant_id = ? AND id = ?`+s.lockSuffix(), tenantID, id); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, `DELETE FROM agent_skills WHERE tenant_id = ? AND agent_id = ?`, tenantID, id); err != nil {
			return err
		}
		return insertSkills(ctx, tx, tenantID, id, skills)
	})
	if err != nil {
		if err = db.Translate(err); errs.Is(err, errs.Invalid) {
			return &errs.Error{Op: op, Code: errs.Invalid, Msg: "unknown skill group", Err: err}
		}
		return fail(op, err, "agent")
	}
	return nil
}
