package verify

// middlewareConfig is filled from Options by initMiddleware.
type middlewareConfig struct{}

func (v *Verifier) initMiddleware() error { return nil }
