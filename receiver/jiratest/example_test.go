package jiratest_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/stairhook/stairhook/receiver/jiratest"
)

// A test points the code under test at srv.URL with srv.Email and
// srv.APIToken, injects faults, and checks what was created.
func Example() {
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
	defer srv.Close()
	srv.FailNext(1, http.StatusTooManyRequests, "1") // the first request is throttled

	body := `{"fields":{"project":{"key":"CS"},"issuetype":{"name":"Task"},"summary":"Churn risk",
	  "description":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Acme"}]}]}}}`
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rest/api/3/issue", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(srv.Email, srv.APIToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After") != "")
	}
	fmt.Println(srv.Issues()[0].Key, srv.Issues()[0].Summary)
	// Output:
	// 429 true
	// 201 false
	// CS-1 Churn risk
}
