package wxcrypt

// SealWithRandom exposes seal so the official vectors, which fix the
// random prefix, can be reproduced byte for byte.
func (c *Crypter) SealWithRandom(random [16]byte, msg []byte) string { return c.seal(random, msg) }

// Open exposes open for tests of receiver-id handling.
func (c *Crypter) Open(encrypted string) ([]byte, string, error) { return c.open(encrypted) }
