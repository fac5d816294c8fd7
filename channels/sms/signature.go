package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/url"
	"slices"
	"strings"
)

// SignatureHeader carries the provider's signature of a webhook call.
const SignatureHeader = "X-Twilio-Signature"

// Signature computes X-Twilio-Signature: Base64(HMAC-SHA1(authToken, rawURL
// followed by every POST parameter's name and value, parameters sorted by
// name in byte order)). rawURL is the URL exactly as the provider called it,
// query string included; params are the POST form (nil for GET, whose data
// is in the URL). Values of a repeated name are taken in sorted order, as
// the provider's own SDK validators do.
func Signature(authToken, rawURL string, params url.Values) string {
	return signWith(authToken, rawURL, params, true)
}

func signWith(authToken, rawURL string, params url.Values, sortValues bool) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(rawURL))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := params[k]
		if sortValues && len(vs) > 1 {
			vs = slices.Clone(vs)
			slices.Sort(vs)
		}
		for _, v := range vs {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether sig is the provider's signature of a call
// to rawURL with params. Besides the URL as given it accepts the URL with
// the scheme's default port added or removed, because the provider is not
// consistent about the port it signs (its SDK validators try both); with
// repeated parameter names it accepts values in sorted and in received
// order. Comparisons are constant-time.
func ValidSignature(authToken, rawURL string, params url.Values, sig string) bool {
	if sig == "" || authToken == "" {
		return false
	}
	repeated := false
	for _, vs := range params {
		if len(vs) > 1 {
			repeated = true
			break
		}
	}
	ok := false
	for _, u := range urlVariants(rawURL) {
		ok = equal(signWith(authToken, u, params, true), sig) || ok
		if repeated {
			ok = equal(signWith(authToken, u, params, false), sig) || ok
		}
	}
	return ok
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// urlVariants is rawURL, then rawURL with the default port toggled: added
// when absent, removed when it is the scheme's default.
func urlVariants(rawURL string) []string {
	out := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return out
	}
	def := map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
	if def == "" {
		return out
	}
	host, port := u.Hostname(), u.Port()
	v := *u
	switch port {
	case "":
		v.Host = net.JoinHostPort(host, def)
	case def:
		v.Host = u.Host[:len(u.Host)-len(port)-1]
	default:
		return out
	}
	return append(out, v.String())
}
