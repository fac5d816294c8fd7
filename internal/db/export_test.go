package db

// CachedStmts is the number of statements d keeps prepared.
func CachedStmts(d *DB) int { return int(d.stmts.n.Load()) }
