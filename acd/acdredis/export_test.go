package acdredis

// ForceScripts makes q run the routing program as a script (EVALSHA) even
// on a server with functions, so that tests cover both forms on the real
// Redis.
func ForceScripts(q *Queue) { q.r.scripts.Store(true) }
