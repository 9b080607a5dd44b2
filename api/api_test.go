package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywatch/keywatch/api"
	"github.com/keywatch/keywatch/config"
)

func newServer(t *testing.T, now func() time.Time) *api.Server {
	t.Helper()
	auth, err := api.NewAuthenticator([]config.Token{
		{Name: "alice", SHA256: api.HashToken("alice-token"), Roles: []string{"approver"}},
		{Name: "ops", SHA256: api.HashToken("ops-token"), Roles: []string{"operator"}},
		{Name: "withdrawals", SHA256: api.HashToken("svc-token"), Roles: []string{"service"}},
		{Name: "root", SHA256: api.HashToken("admin-token"), Roles: []string{"admin"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	s := api.NewServer(auth, nil)
	for _, role := range []api.Role{api.Viewer, api.Operator, api.Approver, api.Admin, api.Service} {
		s.HandleFunc("GET /need/"+string(role), role, func(w http.ResponseWriter, r *http.Request) {
			p, _ := api.PrincipalFrom(r.Context())
			api.WriteJSON(w, 200, map[string]string{"caller": p.Name})
		})
	}
	return s
}

func get(s http.Handler, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestRolesAndStatuses(t *testing.T) {
	s := newServer(t, nil)
	cases := []struct {
		path, token string
		want        int
	}{
		{"/need/viewer", "", 401},
		{"/need/viewer", "not-a-token", 401},
		{"/need/viewer", "alice-token", 200}, // approvers may view
		{"/need/viewer", "ops-token", 200},
		{"/need/viewer", "svc-token", 403}, // the withdrawal system sees only what it needs
		{"/need/approver", "alice-token", 200},
		{"/need/approver", "admin-token", 403}, // approving is for named approvers
		{"/need/operator", "admin-token", 200},
		{"/need/operator", "alice-token", 403},
		{"/need/admin", "ops-token", 403},
		{"/need/service", "svc-token", 200},
		{"/need/service", "admin-token", 403},
	}
	for _, c := range cases {
		rec := get(s, c.path, c.token)
		if rec.Code != c.want {
			t.Errorf("%s with %q: %d, want %d (%s)", c.path, c.token, rec.Code, c.want, rec.Body)
		}
		if c.want == 403 && !strings.Contains(rec.Body.String(), "lacks the") {
			t.Errorf("403 without a reason: %s", rec.Body)
		}
	}
}

func TestFailedAttemptsAreRateLimited(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := newServer(t, func() time.Time { return now })
	for i := range 10 {
		if rec := get(s, "/need/viewer", fmt.Sprintf("guess-%d", i)); rec.Code != 401 {
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	if rec := get(s, "/need/viewer", "ops-token"); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("after 10 failures a valid token got %d; want 429 until the window passes", rec.Code)
	}
	now = now.Add(61 * time.Second)
	if rec := get(s, "/need/viewer", "ops-token"); rec.Code != 200 {
		t.Fatalf("after the window: %d", rec.Code)
	}
}

type screenReq struct {
	RequestID string `json:"request_id"`
	Amount    string `json:"amount"`
	Count     int    `json:"count"`
}

func decode(body string, max int64) error {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	var v screenReq
	return api.DecodeJSON(httptest.NewRecorder(), req, &v, max)
}

func TestDecodeJSONNamesTheField(t *testing.T) {
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"request_id":"r1","amount":"1"}`, 0, ""},
		{`{"request_id":"r1","amout":"1"}`, 400, "amout"},
		{`{"request_id":"r1","count":"three"}`, 400, "count"},
		{`{"request_id":`, 400, ""},
		{`{"request_id":"r1"} {"again":1}`, 400, ""},
		{``, 400, ""},
		{`{"request_id":"` + strings.Repeat("x", 200) + `"}`, 413, ""},
	}
	for _, c := range cases {
		err := decode(c.body, 100)
		if c.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		re, ok := err.(*api.RequestError)
		if !ok || re.Status != c.status || re.Field != c.field {
			t.Errorf("%.40s: got %#v, want status %d field %q", c.body, err, c.status, c.field)
		}
	}
}

func TestErrorBodiesAreJSON(t *testing.T) {
	s := newServer(t, nil)
	rec := get(s, "/need/viewer", "")
	var body api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Fatalf("401 body %q: %v", rec.Body, err)
	}
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

func TestClientReportsStatusAndField(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" {
			api.WriteError(w, 401, "", "unknown token")
			return
		}
		var v screenReq
		if err := api.DecodeJSON(w, r, &v, 0); err != nil {
			api.WriteRequestError(w, err)
			return
		}
		api.WriteJSON(w, 200, v)
	}))
	defer srv.Close()
	c, err := api.NewClient(srv.URL, "t0k")
	if err != nil {
		t.Fatal(err)
	}
	var out screenReq
	if err := c.Do(t.Context(), "POST", "/", map[string]any{"request_id": "r1"}, &out); err != nil || out.RequestID != "r1" {
		t.Fatalf("%v %+v", err, out)
	}
	err = c.Do(t.Context(), "POST", "/", map[string]any{"nope": 1}, nil)
	if err == nil || err.Error() != "400 Bad Request: nope: unknown field" {
		t.Fatalf("got %v", err)
	}
	if _, err := api.NewClient("localhost:8080", ""); err == nil {
		t.Fatal("an address without scheme was accepted")
	}
}
