package chains

import "net/url"

// RedactNodeURL keeps only the scheme and host of a node URL, for logs and
// errors: credentials, and API keys in the path or query, stay out.
func RedactNodeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host
}
