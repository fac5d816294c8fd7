// Package wechattest is a fake WeChat Official Account API for tests: an
// httptest server with the token endpoints (counting fetches), the
// customer-service send API (recording what was sent, enforcing the 48-hour
// window and its message allowance when asked), user info, and errcodes
// injected a number of times; plus builders of signed and encrypted
// webhook calls, and the official crypto vectors read from the channel
// samples. Ingest and outbox tests of other packages drive the WeChat
// adapter through it.
package wechattest
