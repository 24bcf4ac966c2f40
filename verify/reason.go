package verify

// Reason returns the error code (the "error.code" of the JSON body, such as
// "no_matching_signature" or "busy") and the HTTP status the Middleware
// answers err with, for an error given to Options.OnError: the stable name
// of a refusal, for metrics and logs. An error of none of this package's
// sentinels gets the answer the Middleware gives it: that of a failed
// Store, "store_unavailable" and 503.
func Reason(err error) (code string, status int) {
	f := failureFor(err)
	return f.code, f.status
}
