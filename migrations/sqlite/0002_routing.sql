-- Routing engine settings (docs/routing.md): per-group strategy details,
-- aging, overflow, offers, business hours; per-skill routing weight; the
-- capacity a session costs its agent.

ALTER TABLE skill_groups ADD COLUMN fallback_strategy TEXT NOT NULL DEFAULT 'longest_idle';
ALTER TABLE skill_groups ADD COLUMN weight REAL NOT NULL DEFAULT 1;
ALTER TABLE skill_groups ADD COLUMN priority_step_sec INTEGER NOT NULL DEFAULT 60;
ALTER TABLE skill_groups ADD COLUMN max_wait_sec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE skill_groups ADD COLUMN overflow_action TEXT NOT NULL DEFAULT '';
ALTER TABLE skill_groups ADD COLUMN overflow_group_id TEXT NOT NULL DEFAULT '';
ALTER TABLE skill_groups ADD COLUMN sticky_wait_sec INTEGER NOT NULL DEFAULT 30;
ALTER TABLE skill_groups ADD COLUMN ring_step_sec INTEGER NOT NULL DEFAULT 15;
ALTER TABLE skill_groups ADD COLUMN offer_timeout_sec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE skill_groups ADD COLUMN max_missed_offers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE skill_groups ADD COLUMN hours TEXT NOT NULL DEFAULT '';
ALTER TABLE skill_groups ADD COLUMN off_hours_message TEXT NOT NULL DEFAULT '';
ALTER TABLE skill_groups ADD COLUMN busy_message TEXT NOT NULL DEFAULT '';

ALTER TABLE agent_skills ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;

ALTER TABLE channel_accounts ADD COLUMN session_cost INTEGER NOT NULL DEFAULT 1;

ALTER TABLE sessions ADD COLUMN cost INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN offered_at TIMESTAMP;
