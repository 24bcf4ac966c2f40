module github.com/stairhook/stairhook/bench

go 1.26

require (
	github.com/go-playground/webhooks/v6 v6.4.0
	github.com/stairhook/stairhook v0.0.0
	github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
	github.com/stripe/stripe-go/v82 v82.5.1
	github.com/svix/svix-webhooks v1.44.0
)

require (
	github.com/kr/pretty v0.3.1 // indirect
	github.com/rogpeppe/go-internal v1.10.0 // indirect
	golang.org/x/net v0.27.0 // indirect
	gopkg.in/validator.v2 v2.0.1 // indirect
)

replace github.com/stairhook/stairhook => ../
